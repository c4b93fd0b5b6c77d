//! 32-byte digests shown as 64 hex digits: the one encoding shared by blob
//! addresses and commitments.

/// Adds hex encoding, `Display`, `Debug` and `FromStr` to a newtype over
/// `[u8; 32]`; `$what` names it in parse errors.
macro_rules! hex_digest {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits (either case).
            pub fn from_hex(text: &str) -> $crate::error::Result<Self> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes)
                    .map_err(|_| $crate::error::Error::Format($what))?;
                Ok($name(bytes))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;

            fn from_str(text: &str) -> $crate::error::Result<Self> {
                $name::from_hex(text)
            }
        }
    };
}

pub(crate) use hex_digest;
