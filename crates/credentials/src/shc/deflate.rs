//! Raw DEFLATE (RFC 1951, no zlib or gzip header), as the `zip: DEF` JWS
//! header means; decompression is bounded so a small card cannot expand
//! into gigabytes.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::ShcError;

/// Compresses at the best level: cards must be as small as possible to fit
/// in a QR code, and issuing is rare.
pub(crate) fn deflate_raw(data: &[u8]) -> Result<Vec<u8>, ShcError> {
    let mut compressor = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.len().max(64));
        }
        let consumed = usize::try_from(compressor.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let produced_before = out.len();
        let status = compressor
            .compress_vec(input, &mut out, FlushCompress::Finish)
            .map_err(|_| ShcError::InvalidIssuance("the payload could not be compressed".into()))?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        let consumed_now = usize::try_from(compressor.total_in()).unwrap_or(usize::MAX);
        if consumed_now == consumed && out.len() == produced_before && out.len() < out.capacity() {
            return Err(ShcError::InvalidIssuance(
                "the payload could not be compressed".into(),
            ));
        }
    }
}

/// Decompresses a whole raw DEFLATE stream into at most `max_len` bytes.
/// Truncated streams and bytes after the end of the stream are refused.
pub(crate) fn inflate_raw(data: &[u8], max_len: usize) -> Result<Vec<u8>, ShcError> {
    let mut inflater = Decompress::new(false);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            if out.len() > max_len {
                return Err(too_large(max_len));
            }
            // One byte past the limit tells "exactly max_len" from "more".
            let room = (max_len + 1 - out.len()).min(out.len().max(16 * 1024));
            out.reserve_exact(room);
        }
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let produced_before = out.len();
        let status = inflater
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| ShcError::InflateFailed(format!("not valid DEFLATE data ({e})")))?;
        if out.len() > max_len {
            return Err(too_large(max_len));
        }
        let consumed_now = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        match status {
            Status::StreamEnd => {
                return if consumed_now == data.len() {
                    Ok(out)
                } else {
                    Err(ShcError::InflateFailed(
                        "there are bytes after the end of the DEFLATE stream".into(),
                    ))
                };
            }
            Status::Ok | Status::BufError => {
                let stuck = consumed_now == consumed && out.len() == produced_before;
                if stuck && out.len() < out.capacity() {
                    return Err(ShcError::InflateFailed(
                        "the DEFLATE stream is cut short".into(),
                    ));
                }
            }
        }
    }
}

fn too_large(max_len: usize) -> ShcError {
    ShcError::TooLarge(format!("the decompressed contents exceed {max_len} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_without_header() {
        let data = br#"{"iss":"https://example.org","nbf":1}"#.repeat(50);
        let packed = deflate_raw(&data).unwrap();
        assert!(packed.len() < data.len());
        // A zlib stream starts with 0x78; raw DEFLATE has no header.
        assert_ne!(packed[0], 0x78);
        assert_eq!(inflate_raw(&packed, data.len()).unwrap(), data);
    }

    #[test]
    fn empty_input_round_trips() {
        let packed = deflate_raw(b"").unwrap();
        assert_eq!(inflate_raw(&packed, 0).unwrap(), b"");
    }

    #[test]
    fn output_is_capped() {
        let bomb = deflate_raw(&vec![b' '; 4 << 20]).unwrap();
        assert!(bomb.len() < 8 << 10);
        let err = inflate_raw(&bomb, 1 << 20).unwrap_err();
        assert_eq!(err.code(), "shc-too-large");
        let data = vec![b'a'; 1000];
        let packed = deflate_raw(&data).unwrap();
        assert_eq!(inflate_raw(&packed, 1000).unwrap().len(), 1000);
        assert_eq!(
            inflate_raw(&packed, 999).unwrap_err().code(),
            "shc-too-large"
        );
    }

    #[test]
    fn truncated_trailing_and_garbage_are_refused() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        let packed = deflate_raw(&data).unwrap();
        for cut in [0, 1, packed.len() / 2, packed.len() - 1] {
            let err = inflate_raw(&packed[..cut], 1 << 20).unwrap_err();
            assert_eq!(err.code(), "shc-inflate-failed", "cut at {cut}");
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert_eq!(
            inflate_raw(&trailing, 1 << 20).unwrap_err().code(),
            "shc-inflate-failed"
        );
        // Block type 3 is reserved.
        assert_eq!(
            inflate_raw(&[0xff, 0xff], 1 << 20).unwrap_err().code(),
            "shc-inflate-failed"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..20_000)) {
            let packed = deflate_raw(&data).unwrap();
            prop_assert_eq!(inflate_raw(&packed, data.len()).unwrap(), data);
        }

        #[test]
        fn arbitrary_input_never_exceeds_the_cap(data in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            if let Ok(out) = inflate_raw(&data, 4096) {
                prop_assert!(out.len() <= 4096);
            }
        }
    }
}
