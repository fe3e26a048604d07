//! Why a plugin target failed.

use std::time::Duration;

use crate::protocol::ProtocolError;

/// Why a plugin target failed at a path, or as a whole: the cause of each
/// [`plumb_core::target::TargetError`] it returns. A failure of the plugin
/// as a whole ends it: every later call says it is
/// [`Unusable`](Self::Unusable).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `$PLUMB_PLUGIN_TIMEOUT` is not a number of seconds above 0.
    #[error("{variable}={value:?} is not a number of seconds above 0")]
    BadTimeout {
        /// The variable's name.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// `$PLUMB_PLUGIN_TIMEOUT` is not UTF-8.
    #[error("{variable} is not UTF-8")]
    TimeoutNotUtf8 {
        /// The variable's name.
        variable: &'static str,
    },
    /// The command line cannot be split into words.
    #[error("unbalanced quotes or a trailing backslash")]
    BadCommandLine,
    /// The command line is empty.
    #[error("no program to run")]
    NoProgram,
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A pipe to or from the plugin was not set up.
    #[error("no pipe {which}")]
    NoPipe {
        /// Which (`to the plugin's input`, …).
        which: &'static str,
    },
    /// A thread serving the plugin could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The plugin broke the protocol.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// The plugin's input is closed after an earlier failure.
    #[error("the plugin's input is closed")]
    InputClosed,
    /// The plugin stopped reading its input.
    #[error("the plugin stopped reading its input")]
    StoppedReading,
    /// The plugin's output ended.
    #[error("plugin {how}{}", when.map(|w| format!(" {w}")).unwrap_or_default())]
    Ended {
        /// How: `exited (STATUS)` or `closed its output`.
        how: String,
        /// When, if known: `before answering`, `in the middle of a message`.
        when: Option<&'static str>,
    },
    /// The plugin's output could not be read.
    #[error("cannot read the plugin's output: {0}")]
    Read(#[source] std::io::Error),
    /// The plugin did not answer in time, and was killed.
    #[error(
        "no answer within {after:?}{}; killed the plugin",
        write.as_ref().map(|e| format!(" (writing to it failed: {e})")).unwrap_or_default()
    )]
    Timeout {
        /// The timeout.
        after: Duration,
        /// Writing to it failed before, if it did.
        write: Option<std::io::Error>,
    },
    /// The plugin reported a failure of its own, for no one path.
    #[error("plugin failed: {message}")]
    Failed {
        /// Its message.
        message: String,
    },
    /// The plugin reported a failure at one path.
    #[error("{message}")]
    AtPath {
        /// Its message.
        message: String,
    },
    /// The plugin failed earlier, and was given up on.
    #[error("unusable after an earlier failure: {earlier}")]
    Unusable {
        /// The text of that failure.
        earlier: String,
    },
    /// The plugin cannot make a change of this kind.
    #[error("the plugin has no {what}")]
    Unsupported {
        /// What it lacks (`symlinks`, `directories`, `executable files`).
        what: &'static str,
    },
    /// An owner or group given by name: plugins take numbers.
    #[error("owner or group {name:?} is a name; plugin targets take uids and gids as numbers")]
    NamedOwner {
        /// The name.
        name: String,
    },
    /// A request about the path does not fit in one line of the protocol.
    #[error("too long for the plugin protocol's 1 MiB line")]
    TooLong,
    /// The content of a file to write is not of the size the change says.
    #[error("content of {blob} is {actual} bytes, not the {expected} expected")]
    WrongSize {
        /// The blob.
        blob: plumb_core::BlobId,
        /// Its content's size.
        actual: u64,
        /// The size expected.
        expected: u64,
    },
}

/// How a plugin broke the protocol.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    /// It wrote something that is not a message.
    #[error(transparent)]
    Message(#[from] ProtocolError),
    /// It chose a protocol version plumb did not offer.
    #[error("plugin chose protocol {chosen}, but plumb offered only {offered}")]
    Version {
        /// The version it chose.
        chosen: u64,
        /// The one offered.
        offered: u64,
    },
    /// It answered with another message than the one due.
    #[error("expected {wanted}, got {got}")]
    Unexpected {
        /// What was due.
        wanted: String,
        /// What came, and for which path.
        got: String,
    },
    /// It sent raw bytes where a message was due.
    #[error("raw bytes where {wanted} was expected")]
    RawBytes {
        /// What was due.
        wanted: String,
    },
    /// It sent a message inside the content of a file.
    #[error("a message inside the content of {path}")]
    MessageInContent {
        /// The file.
        path: plumb_core::target::TargetPath,
    },
    /// It left out what was asked for.
    #[error("no {what} for {path}, which {were} asked for")]
    Missing {
        /// What (`sha256`, `children`).
        what: &'static str,
        /// The path.
        path: plumb_core::target::TargetPath,
        /// `was` or `were`.
        were: &'static str,
    },
}
