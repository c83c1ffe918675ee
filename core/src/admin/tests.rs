//! The admin core's life cycle without a broker: closing and aborting with calls refused,
//! waiting (on a connection that never comes up) or none at all. Calls against a cluster are
//! tested in kafkit-sim's `admin_core` suite.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{AdminCore, AdminError, AdminEvent, AdminOutcome, NewTopic, OpId};
use crate::config::AdminConfig;
use crate::network::{ClientCore, NetOptions, Output};

fn core() -> AdminCore {
    AdminCore::new(
        &AdminConfig::default(),
        NetOptions::new(vec![("b0".into(), 9092)]),
    )
}

/// Everything the core has queued, in order.
fn drain(core: &mut AdminCore) -> Vec<Output<AdminEvent>> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

/// The events among `out`, in order.
fn events(out: Vec<Output<AdminEvent>>) -> Vec<AdminEvent> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn closed_topics(names: &[&str]) -> BTreeMap<String, Result<(), AdminError>> {
    names
        .iter()
        .map(|n| (n.to_string(), Err(AdminError::Closed)))
        .collect()
}

#[test]
fn close_with_nothing_in_progress_closes_at_once() {
    let mut c = core();
    let now = Instant::now();
    c.close(Duration::from_secs(5), now);
    assert!(c.is_closed());
    assert!(matches!(
        events(drain(&mut c)).as_slice(),
        [AdminEvent::Closed]
    ));
    assert_eq!(c.poll_timeout(), None);
    // Closing again, or aborting, reports nothing more.
    c.close(Duration::from_secs(5), now);
    c.abort();
    assert!(drain(&mut c).is_empty());
}

#[test]
fn calls_after_close_complete_at_once_with_every_item_closed() {
    let mut c = core();
    let now = Instant::now();
    c.close(Duration::ZERO, now);
    drain(&mut c);
    let topics = vec![NewTopic::new("a", 1, 1), NewTopic::new("b", 1, 1)];
    c.create_topics(OpId(3), topics, false, None, now);
    c.list_topics(OpId(4), false, None, now);
    c.list_consumer_groups(OpId(4), None, now);
    let out = drain(&mut c);
    assert!(
        out.iter().all(|o| matches!(o, Output::Event(_))),
        "nothing is connected or sent: {out:?}"
    );
    let got: Vec<(OpId, String)> = events(out)
        .into_iter()
        .map(|e| match e {
            AdminEvent::Completed { id, outcome } => (id, format!("{outcome:?}")),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected = [
        (OpId(3), AdminOutcome::Topics(closed_topics(&["a", "b"]))),
        (OpId(4), AdminOutcome::TopicListing(Err(AdminError::Closed))),
        (OpId(4), AdminOutcome::GroupListing(Err(AdminError::Closed))),
    ]
    .map(|(id, o)| (id, format!("{o:?}")));
    assert_eq!(got, expected, "ids come back as given, repeats included");
}

#[test]
fn close_waits_for_calls_in_progress_until_its_deadline() {
    let mut c = core();
    let t0 = Instant::now();
    c.delete_topics(OpId(1), vec!["x".into()], None, t0);
    let out = drain(&mut c);
    assert!(
        out.iter().any(|o| matches!(o, Output::Connect { .. })),
        "{out:?}"
    );
    // The connection never comes up: the call stays in progress until the close deadline.
    c.close(Duration::from_secs(2), t0);
    assert!(drain(&mut c).is_empty());
    assert_eq!(c.calls_in_progress(), 1);
    assert!(c
        .poll_timeout()
        .is_some_and(|t| t <= t0 + Duration::from_secs(2)));
    c.handle_timeout(t0 + Duration::from_secs(1));
    assert!(events(drain(&mut c)).is_empty());
    c.handle_timeout(t0 + Duration::from_secs(2));
    let out = drain(&mut c);
    assert!(
        out.iter().any(|o| matches!(o, Output::Close { .. })),
        "the connection is closed: {out:?}"
    );
    let events = events(out);
    let [AdminEvent::Completed {
        id: OpId(1),
        outcome: AdminOutcome::Topics(r),
    }, AdminEvent::Closed] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*r, closed_topics(&["x"]));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn close_again_only_brings_the_deadline_forward() {
    let mut c = core();
    let t0 = Instant::now();
    c.describe_cluster(OpId(1), None, t0);
    drain(&mut c);
    c.close(Duration::from_secs(2), t0);
    c.close(Duration::from_secs(10), t0);
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(c.is_closed(), "the earlier deadline holds");
    c.close(Duration::from_secs(1), t0 + Duration::from_secs(2));
    let events = events(drain(&mut c));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, AdminEvent::Closed))
            .count(),
        1
    );
}

#[test]
fn abort_completes_every_call_at_once() {
    let mut c = core();
    let now = Instant::now();
    c.describe_cluster(OpId(9), None, now);
    c.list_consumer_groups(OpId(10), None, now);
    drain(&mut c);
    c.abort();
    let events = events(drain(&mut c));
    let [AdminEvent::Completed {
        id: OpId(9),
        outcome: AdminOutcome::Cluster(Err(AdminError::Closed)),
    }, AdminEvent::Completed {
        id: OpId(10),
        outcome: AdminOutcome::GroupListing(Err(AdminError::Closed)),
    }, AdminEvent::Closed] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(c.calls_in_progress(), 0);
    c.abort();
    assert!(drain(&mut c).is_empty(), "Closed is reported once");
}
