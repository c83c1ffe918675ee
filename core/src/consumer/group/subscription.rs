//! What the member subscribes to: a list of topics or a pattern matched against the cluster's
//! topics (Java's `SubscriptionState` subscription types `AUTO_TOPICS` and `AUTO_PATTERN`).

use std::collections::BTreeSet;

use regex::Regex;

use crate::consumer::error::ConsumerError;
use crate::network::ClusterView;

/// The member's subscription.
#[derive(Debug, Clone, Default)]
pub(crate) enum Subscribed {
    /// Not subscribed (a consumer without a subscription assigns partitions itself).
    #[default]
    Nothing,
    /// These topics.
    Topics(BTreeSet<String>),
    /// Every topic whose whole name matches the pattern; `matched` is the last match against
    /// full metadata (`None` until the first metadata answer).
    Pattern {
        /// The pattern as the application wrote it (the consumer protocol sends it to the
        /// coordinator as it is).
        source: String,
        regex: Regex,
        matched: Option<BTreeSet<String>>,
    },
}

impl Subscribed {
    /// A pattern subscription. Like Java's `Pattern.matcher(topic).matches()`, the pattern
    /// must match the whole topic name.
    pub fn pattern(pattern: &str) -> Result<Self, ConsumerError> {
        let regex =
            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ConsumerError::IllegalState {
                detail: format!("invalid topic pattern {pattern:?}: {e}"),
            })?;
        Ok(Subscribed::Pattern {
            source: pattern.to_owned(),
            regex,
            matched: None,
        })
    }

    /// Whether anything is subscribed.
    pub fn is_active(&self) -> bool {
        !matches!(self, Subscribed::Nothing)
    }

    /// Whether this is a pattern subscription.
    pub fn is_pattern(&self) -> bool {
        matches!(self, Subscribed::Pattern { .. })
    }

    /// The topics subscribed now (for a pattern: matched so far); `None` while a pattern has
    /// not been matched against metadata yet (the member cannot join before).
    pub fn topics(&self) -> Option<BTreeSet<String>> {
        match self {
            Subscribed::Nothing => Some(BTreeSet::new()),
            Subscribed::Topics(t) => Some(t.clone()),
            Subscribed::Pattern { matched, .. } => matched.clone(),
        }
    }

    /// Matches a pattern against full metadata; returns whether the matched set changed.
    pub fn update_matches(&mut self, view: &ClusterView, exclude_internal: bool) -> bool {
        let Subscribed::Pattern { regex, matched, .. } = self else {
            return false;
        };
        let now: BTreeSet<String> = matching_topics(regex, view, exclude_internal);
        if matched.as_ref() == Some(&now) {
            return false;
        }
        *matched = Some(now);
        true
    }
}

/// The topics of `view` that `regex` matches; internal topics (`__consumer_offsets`, ...) are
/// left out when `exclude_internal` (Java's `exclude.internal.topics`).
pub(crate) fn matching_topics(
    regex: &Regex,
    view: &ClusterView,
    exclude_internal: bool,
) -> BTreeSet<String> {
    view.topics
        .values()
        .filter(|t| t.error.is_ok())
        .filter(|t| !(exclude_internal && t.is_internal))
        .filter(|t| regex.is_match(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::network::TopicInfo;
    use crate::protocol::ErrorCode;

    fn view(names: &[(&str, bool)]) -> ClusterView {
        let mut v = ClusterView::default();
        for (n, internal) in names {
            v.topics.insert(
                n.to_string(),
                Arc::new(TopicInfo {
                    name: n.to_string(),
                    topic_id: Default::default(),
                    is_internal: *internal,
                    partitions: Vec::new(),
                    error: ErrorCode::NONE,
                }),
            );
        }
        v
    }

    #[test]
    fn patterns_match_whole_names_and_skip_internal_topics() {
        let mut s = Subscribed::pattern("orders-.*|__.*").unwrap();
        assert_eq!(s.topics(), None, "unknown before metadata");
        let v = view(&[
            ("orders-eu", false),
            ("orders-us", false),
            ("my-orders-eu", false),
            ("__consumer_offsets", true),
            ("__mine", false),
        ]);
        assert!(s.update_matches(&v, true));
        let want: BTreeSet<String> = ["__mine", "orders-eu", "orders-us"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(s.topics(), Some(want.clone()));
        assert!(!s.update_matches(&v, true), "unchanged");
        assert!(s.update_matches(&v, false));
        assert!(s.topics().unwrap().contains("__consumer_offsets"));
        assert!(Subscribed::pattern("(").is_err());
    }
}
