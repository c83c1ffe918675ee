//! placeholder
#[path = "../src/cluster/group/mod.rs"]
#[allow(dead_code)]
mod group;

#[test]
fn builds() {
    let _ = group::GroupCoordinator::new(group::GroupConfig::default());
}
