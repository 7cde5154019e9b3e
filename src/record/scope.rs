//! Scopes: which nodes of which zone a credential may publish, delete and read (DESIGN.md,
//! "Scopes").
//!
//! A scoped API token and a scoped TSIG key carry the same [`Scope`]: one zone and a node
//! pattern, an exact label (`n1`), a prefix (`web-*`) or every node (`*`). The API, the
//! PowerDNS routes and RFC 2136 UPDATE all ask [`Scope::allows`] before a change reaches the
//! writer; a change that touches any node outside the scope is refused as a whole.

use std::fmt;

use thiserror::Error;

use super::{NodeLabel, RecordError, normalize_zone};

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ScopeError {
    #[error("the zone of a scope: {0}")]
    Zone(#[source] RecordError),
    #[error("node pattern {0:?}: expected a node name, PREFIX* or *")]
    Pattern(String),
}

/// The nodes a scope covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePattern {
    /// Exactly this node.
    Exact(NodeLabel),
    /// Every node whose name starts with this (lowercase, non-empty) prefix.
    Prefix(String),
    /// Every node.
    Any,
}

impl NodePattern {
    /// Parses `n1`, `prefix*` or `*`. Case-insensitive, like node names.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let bad = || ScopeError::Pattern(text.to_owned());
        if text == "*" {
            return Ok(Self::Any);
        }
        match text.strip_suffix('*') {
            Some(prefix) => {
                let prefix = prefix.to_ascii_lowercase();
                // A prefix is the start of some valid label: the label rules, except that it
                // may end with '-' and must leave room for one more character.
                let ok = !prefix.is_empty()
                    && prefix.len() < 63
                    && !prefix.starts_with('-')
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if ok {
                    Ok(Self::Prefix(prefix))
                } else {
                    Err(bad())
                }
            }
            None => NodeLabel::parse(text).map(Self::Exact).map_err(|_| bad()),
        }
    }

    /// Whether every node that `other` matches is matched by this pattern too.
    pub fn covers(&self, other: &NodePattern) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (_, Self::Any) => false,
            (Self::Prefix(mine), Self::Prefix(theirs)) => theirs.starts_with(mine.as_str()),
            (Self::Prefix(mine), Self::Exact(n)) => n.as_str().starts_with(mine.as_str()),
            (Self::Exact(mine), Self::Exact(n)) => mine == n,
            (Self::Exact(_), Self::Prefix(_)) => false,
        }
    }

    /// Whether `node` (a valid, lowercase label) is covered.
    pub fn matches(&self, node: &str) -> bool {
        match self {
            Self::Exact(label) => label.as_str() == node,
            Self::Prefix(prefix) => node.starts_with(prefix.as_str()),
            Self::Any => true,
        }
    }
}

impl fmt::Display for NodePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(label) => f.write_str(label.as_str()),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// One zone and the nodes of it that a credential may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The zone in API form (lowercase, no trailing dot).
    pub zone: String,
    pub nodes: NodePattern,
}

impl Scope {
    /// A scope from a zone name (either form) and a node pattern.
    pub fn parse(zone: &str, nodes: &str) -> Result<Self, ScopeError> {
        Ok(Self {
            zone: normalize_zone(zone).map_err(ScopeError::Zone)?,
            nodes: NodePattern::parse(nodes)?,
        })
    }

    /// Whether `node` of `zone` (both in API form) is inside the scope.
    pub fn allows(&self, zone: &str, node: &str) -> bool {
        self.zone == zone && self.nodes.matches(node)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone={},nodes={}", self.zone, self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_covers_only_patterns_inside_it() {
        let p = |t| NodePattern::parse(t).unwrap();
        assert!(p("*").covers(&p("*")));
        assert!(p("*").covers(&p("web*")));
        assert!(p("web*").covers(&p("web-1*")));
        assert!(p("web*").covers(&p("web*")));
        assert!(p("web*").covers(&p("web1")));
        assert!(p("n1").covers(&p("n1")));
        assert!(!p("web*").covers(&p("*")));
        assert!(!p("web-*").covers(&p("web*")));
        assert!(!p("web*").covers(&p("db1")));
        assert!(!p("n1").covers(&p("n1*")));
        assert!(!p("n1").covers(&p("n2")));
    }

    #[test]
    fn patterns_match_what_they_say() {
        let exact = NodePattern::parse("N1").unwrap();
        assert_eq!(exact, NodePattern::Exact(NodeLabel::parse("n1").unwrap()));
        assert!(exact.matches("n1"));
        assert!(!exact.matches("n10"));
        let prefix = NodePattern::parse("Web-*").unwrap();
        assert_eq!(prefix.to_string(), "web-*");
        assert!(prefix.matches("web-1"));
        assert!(prefix.matches("web-"));
        assert!(!prefix.matches("db-1"));
        assert!(!prefix.matches("web"));
        let any = NodePattern::parse("*").unwrap();
        assert!(any.matches("anything"));
        assert_eq!(any.to_string(), "*");
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            "",
            "**",
            "-a*",
            "a_b*",
            "a*b",
            "n.1",
            &"a".repeat(63).replace('a', "b")[..],
        ] {
            if bad.len() == 63 {
                // A 63-character label is a valid exact pattern.
                assert!(NodePattern::parse(bad).is_ok());
                assert!(NodePattern::parse(&format!("{bad}*")).is_err());
                continue;
            }
            assert!(NodePattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_scope_is_one_zone() {
        let scope = Scope::parse("Example.Test.", "n*").unwrap();
        assert_eq!(scope.zone, "example.test");
        assert!(scope.allows("example.test", "n1"));
        assert!(!scope.allows("other.test", "n1"));
        assert!(!scope.allows("example.test", "m1"));
        assert_eq!(scope.to_string(), "zone=example.test,nodes=n*");
        assert!(matches!(
            Scope::parse("bad zone", "*"),
            Err(ScopeError::Zone(_))
        ));
    }
}
