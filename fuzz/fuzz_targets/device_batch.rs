//! A batch of signed device readings as a device sends it: arbitrary bytes
//! to `hygeia_state::devices::batch::parse`. No panic; every refusal has a
//! stable code; a parsed batch has 1 to 1,000 readings of the batch's
//! device, its signature check answers (mostly "bad"), and its commitments
//! cover every reading with days inside its window.
#![no_main]

use hygeia_state::devices::batch::parse;
use hygeia_state::devices::{day_of, MAX_BATCH_READINGS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(batch) => {
            assert!(!batch.readings.is_empty());
            assert!(batch.readings.len() <= MAX_BATCH_READINGS as usize);
            let _ = batch.verify();
            let committed = batch.commit(&[7; 32]);
            assert_eq!(committed.commitments.len(), batch.readings.len());
            assert!(committed.from <= committed.to);
            for kind in &committed.days {
                for &day in &kind.days {
                    assert!(day >= day_of(committed.from) && day <= day_of(committed.to));
                }
            }
        }
        Err(e) => assert!(e.code().starts_with("device.")),
    }
});
