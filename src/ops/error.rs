//! Why a step did not do what it set out to: the one error type of the
//! runbooks, from the step that failed up to the CLI's exit code and the
//! console's Runbooks view. Its text is what the operator reads (the
//! messages are those the steps always gave); its variant is what code
//! decides on (a refusal is not a failure: nothing was attempted).

use crate::remote::RemoteError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum StepError {
    /// Not attempted (observe mode, the pair locked, a precondition).
    #[error("{0}")]
    Refused(Refusal),
    /// The host could not be reached, or the command not run to its end.
    #[error("{host}: {error}")]
    Remote {
        host: String,
        error: Box<RemoteError>,
    },
    /// Anything else: a Cyrus tool's answer, a verification that did not
    /// hold, a file that could not be read (the message says which).
    #[error("{0}")]
    Failed(String),
}

/// Why a step was not attempted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Observe mode: the transport has no write capability.
    #[error("observe mode: this step changes a host")]
    ObserveMode,
    /// Another run holds the pair lock, or it could not be taken.
    #[error("{0}")]
    Locked(String),
    /// What the step needs is not so (the upgrade: the replica is not newer).
    #[error("{0}")]
    Precondition(String),
}

impl StepError {
    /// Nothing was attempted (the runner shows "refused", not "failed").
    pub fn is_refusal(&self) -> bool {
        matches!(self, StepError::Refused(_))
    }
    pub fn observe_mode() -> StepError {
        StepError::Refused(Refusal::ObserveMode)
    }
    /// The host did not answer at all (refused, timed out, gone): what a
    /// dead master does. Decided from the transport's error, and from the
    /// words a remote script uses for the same.
    pub fn host_unreachable(&self) -> bool {
        use crate::remote::RemoteError as R;
        if let StepError::Remote { error, .. } = self {
            if matches!(**error, R::Connect { .. } | R::Timeout { .. }) {
                return true;
            }
        }
        let e = self.to_string();
        e.contains("cannot connect")
            || e.contains("unreachable")
            || e.contains("timed out")
            || e.contains("connection lost")
    }
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Failed(s)
    }
}

impl From<&str> for StepError {
    fn from(s: &str) -> Self {
        StepError::Failed(s.to_string())
    }
}

/// Code that only reports (the lock, the CLI's messages) takes the text.
impl From<StepError> for String {
    fn from(e: StepError) -> Self {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_before_and_is_told_apart_by_its_type() {
        let e = StepError::observe_mode();
        assert!(e.is_refusal());
        assert_eq!(e.to_string(), "observe mode: this step changes a host");
        let f: StepError = "observe mode: this step changes a host".into();
        assert!(!f.is_refusal(), "a message is never taken for a refusal");
    }
}
