//! `kafkit bench --trace-spans LEVEL`: a subscriber that records kafkit's spans the way an
//! exporter does (every attribute formatted into the span's own buffer, the span handed off
//! when it closes), without I/O, so the bench measures what tracing costs the client itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Spans in progress, by id: their formatted attributes and how many handles refer to them.
#[derive(Default)]
struct Spans {
    open: HashMap<u64, (String, usize)>,
}

/// The recorder; cloning shares it.
#[derive(Clone)]
pub struct Recorder {
    max: Level,
    next: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    spans: Arc<Mutex<Spans>>,
}

impl Recorder {
    /// Spans closed so far (each one formatted and handed off).
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }
}

/// Installs a recorder of kafkit's spans at `level` and above, for the whole process.
pub fn install(level: &str) -> Recorder {
    let max = match level {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        _ => Level::INFO,
    };
    let r = Recorder {
        max,
        next: Arc::new(AtomicU64::new(1)),
        closed: Arc::new(AtomicU64::new(0)),
        spans: Arc::default(),
    };
    // Only fails if a subscriber is installed already, which the worker never does.
    let _ = tracing::subscriber::set_global_default(r.clone());
    r
}

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span() && *meta.level() <= self.max && meta.target().starts_with("kafkit")
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max.into())
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut text = String::from(attrs.metadata().name());
        attrs.record(&mut Text(&mut text));
        self.spans.lock().unwrap().open.insert(id, (text, 1));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some((text, _)) = self.spans.lock().unwrap().open.get_mut(&span.into_u64()) {
            values.record(&mut Text(text));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn clone_span(&self, id: &Id) -> Id {
        if let Some((_, refs)) = self.spans.lock().unwrap().open.get_mut(&id.into_u64()) {
            *refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut spans = self.spans.lock().unwrap();
        let Some((_, refs)) = spans.open.get_mut(&id.into_u64()) else {
            return false;
        };
        *refs -= 1;
        if *refs > 0 {
            return false;
        }
        // Handed off: an exporter would queue it; dropping it is the end of our part.
        drop(spans.open.remove(&id.into_u64()));
        self.closed.fetch_add(1, Ordering::Relaxed);
        true
    }
}
