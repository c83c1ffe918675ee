//! The admin core's transaction calls against the simulated cluster on virtual time:
//! `describe_transactions` (per id, at each id's transaction coordinator) and
//! `list_transactions` (every broker, per broker, with Java's filters) over an ongoing, a
//! committed and an aborted transaction, driven at the frame level on the same cluster.

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_support::{decode_as, request_frame};
use kafkit_core::admin::{
    AdminCore, AdminError, AdminOutcome, ListTransactionsOptions, NewTopic, TransactionDescription,
    TransactionListing, TransactionState, TransactionsListing,
};
use kafkit_core::config::AdminConfig;
use kafkit_core::consumer::TopicPartition;
use kafkit_core::protocol::add_partitions_to_txn::request::AddPartitionsToTxnTopic;
use kafkit_core::protocol::describe_transactions::response::TransactionState as DescribedState;
use kafkit_core::protocol::{
    AddPartitionsToTxnRequest, ApiKey, DescribeTransactionsResponse, EndTxnRequest, ErrorCode,
    InitProducerIdRequest, Request, RequestBody, ResponseBody,
};
use kafkit_sim::{AdminSim, ClusterConfig, HookAction};

const TOPIC: &str = "orders";

fn admin(seed: u64) -> AdminSim {
    let config = AdminConfig::builder()
        .set("default_api_timeout_ms", "20000")
        .set("request_timeout_ms", "5000")
        .build()
        .expect("config");
    let cluster = ClusterConfig {
        brokers: 3,
        ..Default::default()
    };
    let mut a = AdminSim::new(cluster, &config, seed).expect("admin");
    let o = a
        .call(|c: &mut AdminCore, op, now| {
            c.create_topics(op, vec![NewTopic::new(TOPIC, 3, 1)], false, None, now)
        })
        .expect("ran");
    let AdminOutcome::Topics(r) = o else {
        panic!("{o:?}")
    };
    assert!(r[TOPIC].is_ok(), "{r:?}");
    a
}

/// Sends `body` straight to `broker` of the admin's cluster (a producer's requests, at the
/// frame level, on a connection of its own) and returns the response.
fn call<R: Request>(a: &mut AdminSim, broker: i32, body: R, version: i16) -> R::Response
where
    RequestBody: From<R>,
{
    // Far above the connection keys the simulation hands out.
    const CONN: u64 = 1 << 40;
    let now = a.sim().now();
    let mut cluster = a.cluster().borrow_mut();
    assert!(cluster.connection_opened(broker, CONN, "/10.9.9.9"));
    let frame = request_frame(&RequestBody::from(body), version, 7);
    let reply = cluster.handle_frame(broker, CONN, frame, now);
    assert_eq!(reply.frames.len(), 1, "{:?}: one response", R::API_KEY);
    decode_as::<R>(version, &reply.frames[0]).1
}

/// A transaction of `id` over `partitions` of `TOPIC`: (producer id, epoch, start time in
/// ms as the cluster's wall clock read it).
fn open(a: &mut AdminSim, id: &str, timeout_ms: i32, partitions: &[i32]) -> (i64, i16, i64) {
    let c = a.cluster().borrow().coordinator_for(id);
    let r = call(
        a,
        c,
        InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        4,
    );
    assert_eq!(r.error_code, 0, "InitProducerId {id}");
    let (pid, epoch) = (r.producer_id, r.producer_epoch);
    let started = {
        let now = a.sim().now();
        a.cluster().borrow().wall_ms(now)
    };
    let r = call(
        a,
        c,
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id.into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: TOPIC.into(),
                partitions: partitions.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        },
        3,
    )
    .results_by_topic_v3_and_below;
    assert!(r[0]
        .results_by_partition
        .iter()
        .all(|p| p.partition_error_code == 0));
    (pid, epoch, started)
}

fn end(a: &mut AdminSim, id: &str, pid: i64, epoch: i16, commit: bool) {
    let c = a.cluster().borrow().coordinator_for(id);
    let r = call(
        a,
        c,
        EndTxnRequest {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        },
        3,
    );
    assert_eq!(r.error_code, 0, "EndTxn {id}");
}

fn describe(
    a: &mut AdminSim,
    ids: &[&str],
) -> BTreeMap<String, Result<TransactionDescription, AdminError>> {
    let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    let o = a
        .call(move |c: &mut AdminCore, op, now| c.describe_transactions(op, ids, None, now))
        .expect("ran");
    match o {
        AdminOutcome::TransactionDescriptions(d) => d,
        other => panic!("{other:?}"),
    }
}

fn list(a: &mut AdminSim, options: ListTransactionsOptions) -> TransactionsListing {
    let o = a
        .call(move |c: &mut AdminCore, op, now| c.list_transactions(op, options, None, now))
        .expect("ran");
    match o {
        AdminOutcome::TransactionListing(r) => r.expect("listing"),
        other => panic!("{other:?}"),
    }
}

fn partitions(ps: &[i32]) -> BTreeSet<TopicPartition> {
    ps.iter().map(|p| TopicPartition::new(TOPIC, *p)).collect()
}

fn listing(id: &str, producer_id: i64, state: TransactionState) -> TransactionListing {
    TransactionListing {
        transactional_id: id.into(),
        producer_id,
        state,
    }
}

#[test]
fn ongoing_committed_and_aborted_transactions_are_described_and_listed() {
    let mut a = admin(3);
    let (p_on, e_on, start_on) = open(&mut a, "ongoing", 45_000, &[0, 2]);
    a.sim().run_for(Duration::from_millis(250)).expect("ran");
    let (p_co, e_co, _) = open(&mut a, "committed", 30_000, &[1]);
    end(&mut a, "committed", p_co, e_co, true);
    let (p_ab, e_ab, _) = open(&mut a, "aborted", 20_000, &[0, 1]);
    end(&mut a, "aborted", p_ab, e_ab, false);
    // Three distinct producers.
    assert_eq!(BTreeSet::from([p_on, p_co, p_ab]).len(), 3);

    let d = describe(&mut a, &["ongoing", "committed", "aborted", "nope"]);
    let coordinator = |a: &AdminSim, id: &str| a.cluster().borrow().coordinator_for(id);
    assert_eq!(
        d["ongoing"],
        Ok(TransactionDescription {
            coordinator_id: coordinator(&a, "ongoing"),
            state: TransactionState::Ongoing,
            producer_id: p_on,
            producer_epoch: e_on,
            transaction_timeout_ms: 45_000,
            transaction_start_time_ms: Some(start_on),
            topic_partitions: partitions(&[0, 2]),
        })
    );
    assert_eq!(
        d["committed"],
        Ok(TransactionDescription {
            coordinator_id: coordinator(&a, "committed"),
            state: TransactionState::CompleteCommit,
            producer_id: p_co,
            producer_epoch: e_co,
            transaction_timeout_ms: 30_000,
            transaction_start_time_ms: None,
            topic_partitions: BTreeSet::new(),
        })
    );
    assert_eq!(
        d["aborted"],
        Ok(TransactionDescription {
            coordinator_id: coordinator(&a, "aborted"),
            state: TransactionState::CompleteAbort,
            producer_id: p_ab,
            producer_epoch: e_ab,
            transaction_timeout_ms: 20_000,
            transaction_start_time_ms: None,
            topic_partitions: BTreeSet::new(),
        })
    );
    assert_eq!(
        d["nope"].as_ref().err().and_then(AdminError::code),
        Some(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND),
        "{d:?}"
    );

    // Every broker answers; the listing gathers all three.
    let all = list(&mut a, ListTransactionsOptions::default());
    assert_eq!(all.by_broker.len(), 3, "{all:?}");
    assert_eq!(
        all.all(),
        Ok(vec![
            listing("aborted", p_ab, TransactionState::CompleteAbort),
            listing("committed", p_co, TransactionState::CompleteCommit),
            listing("ongoing", p_on, TransactionState::Ongoing),
        ])
    );
    // Each transaction is listed by its coordinator only.
    for (node, r) in &all.by_broker {
        for t in r.as_ref().expect("answered") {
            assert_eq!(*node, coordinator(&a, &t.transactional_id), "{t:?}");
        }
    }

    // Filters: by state, by producer id, both, and by duration.
    let committed = ListTransactionsOptions::default()
        .filter_states([TransactionState::CompleteCommit, TransactionState::Empty]);
    assert_eq!(
        list(&mut a, committed).all(),
        Ok(vec![listing(
            "committed",
            p_co,
            TransactionState::CompleteCommit
        )])
    );
    let by_pid = ListTransactionsOptions::default().filter_producer_ids([p_ab, p_on]);
    assert_eq!(
        list(&mut a, by_pid.clone()).all(),
        Ok(vec![
            listing("aborted", p_ab, TransactionState::CompleteAbort),
            listing("ongoing", p_on, TransactionState::Ongoing),
        ])
    );
    let none = by_pid.filter_states([TransactionState::CompleteCommit]);
    assert_eq!(list(&mut a, none).all(), Ok(Vec::new()));
    // Only the ongoing transaction has been open at all, for longer than 200 ms.
    let long = ListTransactionsOptions::default().filter_on_duration(Duration::from_millis(200));
    assert_eq!(
        list(&mut a, long).all(),
        Ok(vec![listing("ongoing", p_on, TransactionState::Ongoing)])
    );
}

#[test]
fn describe_follows_a_coordinator_that_moved() {
    let mut a = admin(5);
    let (pid, epoch, _) = open(&mut a, "mover", 10_000, &[1]);
    // One NOT_COORDINATOR from the coordinator: the core looks it up again and asks again.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    a.cluster().borrow_mut().set_hook(
        ApiKey::DescribeTransactions,
        Box::new(move |_, body| {
            if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                return HookAction::Pass;
            }
            let RequestBody::DescribeTransactions(req) = body else {
                return HookAction::Pass;
            };
            let transaction_states = req
                .transactional_ids
                .iter()
                .map(|id| DescribedState {
                    error_code: ErrorCode::NOT_COORDINATOR.code(),
                    transactional_id: id.clone(),
                    ..Default::default()
                })
                .collect();
            HookAction::Respond(ResponseBody::DescribeTransactions(
                DescribeTransactionsResponse {
                    transaction_states,
                    ..Default::default()
                },
            ))
        }),
    );
    let d = describe(&mut a, &["mover"]);
    let got = d["mover"].as_ref().expect("described after the retry");
    assert_eq!((got.producer_id, got.producer_epoch), (pid, epoch));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked twice");
    let m = a.metrics();
    assert_eq!(m.calls["describe_transactions"].call_total, 1.0);
}

#[test]
fn an_empty_id_is_refused_and_the_others_answered() {
    let mut a = admin(7);
    open(&mut a, "real", 10_000, &[0]);
    let d = describe(&mut a, &["", "real"]);
    assert!(matches!(d[""], Err(AdminError::InvalidRequest(_))), "{d:?}");
    assert_eq!(
        d["real"].as_ref().map(|t| t.state.clone()),
        Ok(TransactionState::Ongoing)
    );
}

#[test]
fn a_broker_that_fails_its_listing_is_reported_apart_and_fails_all() {
    let mut a = admin(9);
    let (pid, _, _) = open(&mut a, "listed", 10_000, &[0]);
    // The first broker asked refuses (not retriable); the other two answer.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    a.cluster().borrow_mut().set_hook(
        ApiKey::ListTransactions,
        Box::new(move |_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                return HookAction::Pass;
            }
            HookAction::Respond(ResponseBody::ListTransactions(
                kafkit_core::protocol::ListTransactionsResponse {
                    error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED.code(),
                    ..Default::default()
                },
            ))
        }),
    );
    let listing = list(&mut a, ListTransactionsOptions::default());
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one request per broker");
    let failed: Vec<_> = listing
        .by_broker
        .values()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(failed.len(), 1, "{listing:?}");
    assert_eq!(
        failed[0].code(),
        Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED)
    );
    assert_eq!(listing.all().err().as_ref(), Some(failed[0]));
    // The answering brokers' transactions are there, unless the one that failed holds it.
    let holder = a.cluster().borrow().coordinator_for("listed");
    match &listing.by_broker[&holder] {
        Ok(ts) => assert_eq!(ts, &[listing_of("listed", pid)]),
        Err(_) => assert!(listing
            .by_broker
            .values()
            .all(|r| r.as_ref().map_or(true, Vec::is_empty))),
    }
}

fn listing_of(id: &str, pid: i64) -> TransactionListing {
    listing(id, pid, TransactionState::Ongoing)
}
