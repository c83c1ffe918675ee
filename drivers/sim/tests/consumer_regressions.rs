//! Regressions found through the drivers and the CLI, replayed in the simulation.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::TopicPartition;
use kafkit_sim::{ClusterConfig, ConsumerSim};

/// `kafkit consume -o @<future timestamp> -e`: an offsets_for_times lookup that finds nothing,
/// then seek_to_end. The partition must be fetched afterwards (its high watermark becomes
/// known), not left idle forever.
#[test]
fn seek_to_end_after_an_offsets_for_times_lookup_fetches() {
    let mut config = ConsumerConfig::default();
    config.allow_auto_create_topics = true;
    let cluster = ClusterConfig {
        auto_create_topics: true,
        default_partitions: 3,
        ..ClusterConfig::default()
    };
    let mut c = ConsumerSim::new(cluster, &config, 7).expect("sim");
    let tp = TopicPartition::new("tt", 1);
    c.assign([tp.clone()]);
    let found = c
        .offsets_for_times(BTreeMap::from([(tp.clone(), 99_999_999_999_999)]))
        .expect("sim")
        .expect("lookup");
    assert_eq!(found.get(&tp), Some(&None), "no record is that recent");
    c.seek_to_end(std::slice::from_ref(&tp))
        .expect("seek_to_end");
    for _ in 0..20 {
        let _ = c.poll(Duration::from_millis(100)).expect("sim");
        if c.highwater(&tp).expect("assigned").is_some() {
            break;
        }
    }
    assert_eq!(c.position(&tp).expect("sim").expect("position"), 0);
    assert_eq!(
        c.highwater(&tp).expect("assigned"),
        Some(0),
        "fetched since the seek"
    );
}
