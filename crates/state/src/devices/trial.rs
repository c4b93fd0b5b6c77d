//! Devices and adherence inside a trial (docs/devices.md, "Inside a
//! trial").
//!
//! A device attested with a `study` belongs to the trial: its patient is
//! the signer's did:key for that study (the subject's pseudonym, so the
//! participant's identity never reaches the sponsor), and the signer must
//! be a subject of the study whose consent counts now. Every batch of such
//! a device is checked against the subject as it stands when the batch is
//! applied: withdrawn or ended, awaiting re-consent after an amendment, or
//! with a reading outside the subject's trial window (from the ledger's
//! clock at its first consent to the ledger's clock when it withdrew or
//! its participation ended), it is refused and no data flows.
//!
//! An adherence rule of a study is its sponsor's; it counts only the
//! readings of the subject's devices bound to that study, and only the
//! days inside the subject's trial window. A rule of no study never counts
//! a trial device: the trial's data serves the trial alone.

use hygeia_ledger::{ErrorCode, TxError};

use super::super::trials::{Study, Subject, SubjectState};
use super::super::LedgerState;
use super::{day_of, DeviceBatch, DeviceEntry};

fn conflict(code: &'static str, message: impl Into<String>) -> TxError {
    TxError::new(ErrorCode::Conflict(code), message)
}

/// The study `study_id` and its subject `subject`, if that subject's
/// consent counts now: it has neither withdrawn nor ended, the study has
/// not ended, and its consent is to a version at or above the study's
/// consent floor (after an amendment asking for re-consent:
/// `trial.reconsent_required`).
pub(crate) fn require_consenting<'a>(
    state: &'a LedgerState,
    study_id: &str,
    subject: &str,
) -> Result<(&'a Study, &'a Subject), TxError> {
    let study = state.trials.require_study(study_id)?;
    let Some(entry) = state.trials.subject(study_id, subject) else {
        return Err(TxError::new(
            ErrorCode::Forbidden("trial.not_subject"),
            "only a subject of the study binds a device to it, for its own readings",
        ));
    };
    if entry.state == SubjectState::Withdrawn {
        return Err(conflict(
            "trial.subject_withdrawn",
            "the subject has withdrawn: none of its data flows to the study",
        ));
    }
    if entry.state.is_final() {
        return Err(conflict(
            "trial.subject_ended",
            format!("the subject is {}", entry.state.code()),
        ));
    }
    if study.state.is_final() {
        return Err(conflict(
            "trial.study_ended",
            format!("the study is {}", study.state.code()),
        ));
    }
    if entry.consented_version < study.consent_floor() {
        return Err(conflict(
            "trial.reconsent_required",
            "the subject must consent to the amended protocol first",
        ));
    }
    Ok((study, entry))
}

/// The trial's checks of a batch from `device`, if it is bound to a study
/// (none otherwise).
pub(crate) fn check_batch(
    state: &LedgerState,
    device: &DeviceEntry,
    batch: &DeviceBatch,
) -> Result<(), TxError> {
    let Some(study) = &device.study else {
        return Ok(());
    };
    let (_, subject) = require_consenting(state, study, &device.patient)?;
    let after_end = subject.window_until.is_some_and(|until| batch.to >= until);
    if batch.from < subject.window_from || after_end {
        return Err(TxError::new(
            ErrorCode::Invalid("device.outside_trial_window"),
            format!(
                "readings lie outside the subject's trial window, which starts at {} (the ledger's clock at its consent)",
                subject.window_from
            ),
        ));
    }
    Ok(())
}

/// The first and last day (Unix day numbers, inclusive) of a subject's
/// trial window; an open window ends at the last day there is.
pub(crate) fn window_days(subject: &Subject) -> (u32, u32) {
    (
        day_of(subject.window_from),
        subject.window_until.map_or(u32::MAX, day_of),
    )
}

#[cfg(test)]
mod tests;
