//! [`OpId`]: how an application names the commands it gives a core, and how the core names
//! them back in its events.

/// Names one application command (a record sent, a flush, a commit, an admin call, a
/// request) to a core; the core reports the command's outcome in an event carrying the same
/// id. Every core uses this one type.
///
/// The application chooses the ids (a counter, a slab index, anything): the core never
/// interprets them beyond handing them back, so ids the application repeats come back
/// repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

impl OpId {
    /// The id after this one (for applications that count).
    #[must_use]
    pub fn next(self) -> OpId {
        OpId(self.0.wrapping_add(1))
    }
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "op {}", self.0)
    }
}
