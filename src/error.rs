//! The library's error type. `Input` errors are the user's to fix (exit code 2); the others
//! are failures of the run itself.

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad configuration, parameters file, command line or output location.
    #[error("{0}")]
    Input(String),
    /// The engine could not do its work (no adapter, device lost, driver cut a loop short).
    #[error("{0}")]
    Engine(String),
    /// The numbers broke down: non-finite, exploding, or below the system's lower bound.
    #[error("{0}")]
    Diverged(String),
    /// A check the command exists to make did not pass (`validate`).
    #[error("{0}")]
    Failed(String),
    /// Stopped early on request (Ctrl-C, time budget); a checkpoint was written.
    #[error("{0}")]
    Interrupted(String),
    /// Reading or writing a file failed after the input was validated; `hint` (empty, or
    /// starting with ". ") says how to go on.
    #[error("{context}: {source}{hint}")]
    Io {
        context: String,
        source: std::io::Error,
        hint: String,
    },
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    pub fn engine(message: impl Into<String>) -> Self {
        Error::Engine(message.into())
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
            hint: String::new(),
        }
    }

    /// The same error with `hint` (how to continue) added, where it is a failure of a run in
    /// progress: the engine's or a file's (a full disk).
    pub fn with_hint(self, hint: &str) -> Self {
        match self {
            Error::Engine(message) => Error::Engine(format!("{message}. {hint}")),
            Error::Io {
                context, source, ..
            } => Error::Io {
                context,
                source,
                hint: format!(". {hint}"),
            },
            other => other,
        }
    }

    /// The same error, its message prefixed by `place` (where it happened: a sweep point).
    pub fn at(self, place: &str) -> Self {
        match self {
            Error::Input(m) => Error::Input(format!("{place}: {m}")),
            Error::Engine(m) => Error::Engine(format!("{place}: {m}")),
            Error::Diverged(m) => Error::Diverged(format!("{place}: {m}")),
            Error::Failed(m) => Error::Failed(format!("{place}: {m}")),
            Error::Interrupted(m) => Error::Interrupted(format!("{place}: {m}")),
            Error::Io {
                context,
                source,
                hint,
            } => Error::Io {
                context: format!("{place}: {context}"),
                source,
                hint,
            },
        }
    }

    /// Process exit code: 2 for input the user must fix, 130 for a run stopped on request
    /// (as after SIGINT), 1 for other failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_prefixes_the_message_and_keeps_the_exit_code() {
        let errors = [
            Error::input("bad"),
            Error::engine("lost"),
            Error::Diverged("nan".into()),
            Error::Interrupted("stop".into()),
            Error::io("writing x", std::io::Error::other("disk full")),
        ];
        for e in errors {
            let (code, text) = (e.exit_code(), e.to_string());
            let placed = e.at("sweep point 3 (omega = 0.5)");
            assert_eq!(placed.exit_code(), code);
            assert_eq!(
                placed.to_string(),
                format!("sweep point 3 (omega = 0.5): {text}")
            );
        }
    }
}
