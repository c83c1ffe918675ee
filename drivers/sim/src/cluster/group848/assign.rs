//! The server-side assignors: `uniform` (sticky and balanced) and `range` (contiguous ranges
//! of each topic, as the classic range assignor), computing a group's target assignment from
//! the members' resolved subscriptions.

use std::collections::{BTreeMap, BTreeSet};

use kafkit_core::codec::Uuid;

use super::{Assignment, Topics};

/// What an assignor is given about one member.
#[derive(Clone, Debug)]
pub struct AssignorMember<'a> {
    /// The member id.
    pub id: &'a str,
    /// The topics it subscribes to that exist (resolved names and regex).
    pub topics: BTreeSet<&'a str>,
    /// Its previous target assignment (stickiness).
    pub previous: Option<&'a Assignment>,
}

/// The target assignment by `assignor` (`"uniform"` or `"range"`; the caller checked the
/// name) of the partitions of `topics` among `members`.
pub fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    if assignor == "range" {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

/// For each topic, the members subscribed to it sorted by id; the first `n % m` get one
/// partition more, in contiguous ranges.
fn range(members: &[AssignorMember<'_>], topics: &Topics) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_owned(), Assignment::new()))
        .collect();
    for (name, meta) in topics {
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(name.as_str()))
            .map(|m| m.id)
            .collect();
        if subs.is_empty() {
            continue;
        }
        subs.sort_unstable();
        let n = meta.partitions.max(0) as usize;
        let (each, extra) = (n / subs.len(), n % subs.len());
        let mut next = 0usize;
        for (i, id) in subs.iter().enumerate() {
            let count = each + usize::from(i < extra);
            if count == 0 {
                continue;
            }
            let parts = out.get_mut(*id).map(|a| a.entry(meta.id).or_default());
            if let Some(parts) = parts {
                parts.extend((next..next + count).map(|p| p as i32));
            }
            next += count;
        }
    }
    out
}

/// Sticky balance: every member keeps what it had and still subscribes to; the free
/// partitions go one by one to the least loaded subscriber; then partitions move from a member
/// to a subscriber holding at least two fewer, until none can.
fn uniform(members: &[AssignorMember<'_>], topics: &Topics) -> BTreeMap<String, Assignment> {
    // Partitions of every topic someone subscribes to, in (name, partition) order.
    let by_id: BTreeMap<Uuid, &str> = topics.iter().map(|(n, t)| (t.id, n.as_str())).collect();
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut all: Vec<(Uuid, i32)> = Vec::new();
    for (name, meta) in topics {
        if members.iter().any(|m| m.topics.contains(name.as_str())) {
            all.extend((0..meta.partitions).map(|p| (meta.id, p)));
        }
    }
    let eligible = |i: usize, tp: &(Uuid, i32)| {
        by_id
            .get(&tp.0)
            .is_some_and(|n| members[i].topics.contains(n))
    };
    let mut load = vec![0usize; members.len()];
    // Keep what each member had, if still valid and not claimed by an earlier member.
    for (i, m) in members.iter().enumerate() {
        for (topic, parts) in m.previous.into_iter().flatten() {
            for &p in parts {
                let tp = (*topic, p);
                let exists = topics
                    .values()
                    .any(|t| t.id == *topic && (0..t.partitions).contains(&p));
                if exists && eligible(i, &tp) && !owner.contains_key(&tp) {
                    owner.insert(tp, i);
                    load[i] += 1;
                }
            }
        }
    }
    // Free partitions to the least loaded subscriber (ties: the first in id order).
    for tp in &all {
        if owner.contains_key(tp) {
            continue;
        }
        let best = (0..members.len())
            .filter(|&i| eligible(i, tp))
            .min_by_key(|&i| (load[i], members[i].id));
        if let Some(i) = best {
            owner.insert(*tp, i);
            load[i] += 1;
        }
    }
    // Move from the most to the least loaded while that lowers the imbalance. Each move
    // lowers the sum of squared loads, so this ends.
    loop {
        let mut moved = false;
        for tp in &all {
            let Some(&from) = owner.get(tp) else {
                continue;
            };
            let to = (0..members.len())
                .filter(|&i| eligible(i, tp) && load[i] + 1 < load[from])
                .min_by_key(|&i| (load[i], members[i].id));
            if let Some(to) = to {
                owner.insert(*tp, to);
                load[from] -= 1;
                load[to] += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_owned(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        if let Some(a) = out.get_mut(members[i].id) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::TopicMeta;
    use super::*;

    fn topics(list: &[(&str, u8, i32)]) -> Topics {
        list.iter()
            .map(|&(n, id, p)| {
                let mut u = [0u8; 16];
                u[15] = id;
                (
                    n.to_owned(),
                    TopicMeta {
                        id: Uuid(u),
                        partitions: p,
                    },
                )
            })
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let t = topics(&[("a", 1, 7), ("b", 2, 2)]);
        let subs: BTreeSet<&str> = ["a", "b"].into();
        let one = [AssignorMember {
            id: "m1",
            topics: subs.clone(),
            previous: None,
        }];
        let first = assign("uniform", &one, &t);
        assert_eq!(count(&first["m1"]), 9);
        let two = [
            AssignorMember {
                id: "m1",
                topics: subs.clone(),
                previous: first.get("m1"),
            },
            AssignorMember {
                id: "m2",
                topics: subs.clone(),
                previous: None,
            },
        ];
        let second = assign("uniform", &two, &t);
        let (c1, c2) = (count(&second["m1"]), count(&second["m2"]));
        assert_eq!(c1 + c2, 9);
        assert!(c1.abs_diff(c2) <= 1, "{c1} vs {c2}");
        // m1 kept only partitions it had: nothing moved to it.
        for (topic, parts) in &second["m1"] {
            assert!(parts.is_subset(&first["m1"][topic]));
        }
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let t = topics(&[("a", 1, 4), ("b", 2, 4)]);
        let ms = [
            AssignorMember {
                id: "m1",
                topics: ["a"].into(),
                previous: None,
            },
            AssignorMember {
                id: "m2",
                topics: ["a", "b"].into(),
                previous: None,
            },
        ];
        let out = assign("uniform", &ms, &t);
        assert!(!out["m1"].contains_key(&t["b"].id));
        assert_eq!(count(&out["m1"]) + count(&out["m2"]), 8);
        assert_eq!(out["m2"][&t["b"].id].len(), 4);
    }

    #[test]
    fn range_splits_each_topic_in_order() {
        let t = topics(&[("a", 1, 5)]);
        let ms = [
            AssignorMember {
                id: "y",
                topics: ["a"].into(),
                previous: None,
            },
            AssignorMember {
                id: "x",
                topics: ["a"].into(),
                previous: None,
            },
        ];
        let out = assign("range", &ms, &t);
        let id = t["a"].id;
        assert_eq!(out["x"][&id], [0, 1, 2].into());
        assert_eq!(out["y"][&id], [3, 4].into());
    }
}
