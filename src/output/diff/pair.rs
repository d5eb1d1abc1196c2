//! Pairing interfaces of two captures: by `--match`, then by name.

use super::{label_of, DiffError, IfaceRef, MatchedBy};
use crate::output::json::{Capture, JsonInterface};

/// A `--match` side: `name`, or `netns/name` (interface names cannot contain '/', so the
/// last '/' separates them even when a label has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Selector<'a> {
    netns: Option<&'a str>,
    name: &'a str,
}

impl<'a> Selector<'a> {
    fn parse(s: &'a str) -> Result<Selector<'a>, &'static str> {
        let (netns, name) = match s.rsplit_once('/') {
            Some(("", _)) => return Err("empty netns label before '/'"),
            Some((ns, name)) => (Some(ns), name),
            None => (None, s),
        };
        if name.is_empty() {
            return Err("empty interface name");
        }
        if name.chars().any(|c| c.is_whitespace() || c == ':') {
            return Err("an interface name has no spaces or ':'");
        }
        Ok(Selector { netns, name })
    }

    fn matches(&self, i: &JsonInterface) -> bool {
        i.name == self.name && self.netns.is_none_or(|ns| ns == label_of(i))
    }
}

/// Checks one `--match BEFORE=AFTER` argument.
pub fn parse_match(arg: &str) -> Result<(String, String), DiffError> {
    // Debug quoting keeps the message on one line whatever the argument holds.
    let bad = |why| DiffError::BadMatch {
        arg: format!("{arg:?}"),
        why,
    };
    let (b, a) = arg.split_once('=').ok_or_else(|| bad("no '='"))?;
    if a.contains('=') {
        return Err(bad("more than one '='"));
    }
    if b.is_empty() || a.is_empty() {
        return Err(bad("empty side"));
    }
    Selector::parse(b).map_err(bad)?;
    Selector::parse(a).map_err(bad)?;
    Ok((b.to_string(), a.to_string()))
}

/// The one unused interface `sel` names in `cap`, or why there is none.
fn resolve(sel: &str, cap: &Capture, used: &[bool], side: &str) -> Result<usize, String> {
    let s = Selector::parse(sel).map_err(|e| e.to_string())?;
    let all: Vec<usize> = (0..cap.interfaces.len())
        .filter(|&k| s.matches(&cap.interfaces[k]))
        .collect();
    let free: Vec<usize> = all.iter().copied().filter(|&k| !used[k]).collect();
    match (free.as_slice(), all.len()) {
        ([k], _) => Ok(*k),
        ([], 0) => Err(format!("no interface {sel} in the {side} capture")),
        ([], _) => Err(format!("{sel} in the {side} capture is already matched")),
        (more, _) => Err(format!(
            "{} interfaces named {sel} in the {side} capture; use NETNS/NAME",
            more.len()
        )),
    }
}

/// Pairs interfaces: the user's `--match`es first, then same netns label and name, then
/// the same name when it is unique among the unmatched on both sides.
pub(super) fn pair(
    before: &Capture,
    after: &Capture,
    matches: &[(String, String)],
) -> Result<Vec<(usize, usize, MatchedBy)>, DiffError> {
    let (bi, ai) = (&before.interfaces, &after.interfaces);
    let mut used_b = vec![false; bi.len()];
    let mut used_a = vec![false; ai.len()];
    let mut pairs = Vec::new();
    for (b, a) in matches {
        let err = |why| DiffError::Unresolved {
            arg: format!("{:?}", format!("{b}={a}")),
            why,
        };
        let kb = resolve(b, before, &used_b, "before").map_err(err)?;
        let ka = resolve(a, after, &used_a, "after").map_err(err)?;
        used_b[kb] = true;
        used_a[ka] = true;
        pairs.push((kb, ka, MatchedBy::Match));
    }
    for kb in 0..bi.len() {
        if used_b[kb] {
            continue;
        }
        let (label, name) = (label_of(&bi[kb]), &bi[kb].name);
        if let Some(ka) =
            (0..ai.len()).find(|&k| !used_a[k] && ai[k].name == *name && label_of(&ai[k]) == label)
        {
            used_b[kb] = true;
            used_a[ka] = true;
            pairs.push((kb, ka, MatchedBy::NetnsAndName));
        }
    }
    // Decided on the leftovers of the exact pass, so a name shared by a matched and an
    // unmatched interface still counts as unique.
    let free_named = |ifs: &[JsonInterface], used: &[bool], name: &str| -> Vec<usize> {
        (0..ifs.len())
            .filter(|&k| !used[k] && ifs[k].name == name)
            .collect()
    };
    for kb in 0..bi.len() {
        if used_b[kb] {
            continue;
        }
        let name = &bi[kb].name;
        let (fb, fa) = (free_named(bi, &used_b, name), free_named(ai, &used_a, name));
        if let ([_], [ka]) = (fb.as_slice(), fa.as_slice()) {
            let ka = *ka;
            used_b[kb] = true;
            used_a[ka] = true;
            pairs.push((kb, ka, MatchedBy::Name));
        }
    }
    Ok(pairs)
}

pub(super) fn sort_refs(v: &mut [IfaceRef]) {
    v.sort_by(|x, y| (&x.netns, &x.name, x.ifindex).cmp(&(&y.netns, &y.name, y.ifindex)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_syntax() {
        assert_eq!(parse_match("a=b").unwrap(), ("a".into(), "b".into()));
        assert!(parse_match("pod-a/eth0=host/veth1").is_ok());
        assert!(
            parse_match("k8s/ns/pod/eth0=eth0").is_ok(),
            "label with '/'"
        );
        for bad in [
            "ab",
            "a=b=c",
            "=b",
            "a=",
            "/eth0=b",
            "pod/=b",
            "a b=c",
            "docker:abc=eth0",
        ] {
            let e = parse_match(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid --match"), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
