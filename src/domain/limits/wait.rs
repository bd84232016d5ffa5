//! What a step or execution waits on, as it is stored and shown (`waitingOn`): a
//! kind and a key, `concurrency customer:acme`, `rate openai`, `executions
//! customer:acme`, `share customer:acme`. A share's label is also the key its
//! count is kept under (keys have no spaces, so the two never meet).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    /// A step, for a slot of its key.
    Concurrency,
    /// A step, for its reserved start at its key's rate.
    Rate,
    /// A QUEUED execution, for a slot of its key.
    Executions,
    /// A step, for its key's share of the steps handed to workers.
    Share,
}

const KINDS: [WaitKind; 4] = [
    WaitKind::Concurrency,
    WaitKind::Rate,
    WaitKind::Executions,
    WaitKind::Share,
];

impl WaitKind {
    fn word(self) -> &'static str {
        match self {
            WaitKind::Concurrency => "concurrency",
            WaitKind::Rate => "rate",
            WaitKind::Executions => "executions",
            WaitKind::Share => "share",
        }
    }

    /// The label of a wait of this kind on `key`.
    pub fn on(self, key: &str) -> String {
        format!("{} {key}", self.word())
    }
}

/// The kind and key a label names.
pub fn parse(label: &str) -> Option<(WaitKind, &str)> {
    let (word, key) = label.split_once(' ')?;
    let kind = KINDS.into_iter().find(|kind| kind.word() == word)?;
    Some((kind, key))
}

/// Whether `label` is a wait of `kind`.
pub fn is(kind: WaitKind, label: &str) -> bool {
    parse(label).is_some_and(|(k, _)| k == kind)
}

/// The key whose waiting count a step waiting on `label` adds to: its key for a
/// slot, the share's key for a share; none for a rate.
pub fn counted_step_key(label: &str) -> Option<&str> {
    match parse(label)? {
        (WaitKind::Concurrency, key) => Some(key),
        (WaitKind::Share, _) => Some(label),
        _ => None,
    }
}

/// The key a label names, or the label itself when it names none.
pub fn key_of(label: &str) -> &str {
    parse(label).map_or(label, |(_, key)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_their_kind_and_key() {
        let label = WaitKind::Share.on("customer:acme");
        assert_eq!(label, "share customer:acme");
        assert_eq!(parse(&label), Some((WaitKind::Share, "customer:acme")));
        assert_eq!(counted_step_key(&label), Some(label.as_str()));
        assert_eq!(counted_step_key("concurrency gpu"), Some("gpu"));
        assert_eq!(counted_step_key("rate openai"), None);
        assert_eq!(parse("customer:acme"), None);
        assert_eq!(key_of("executions customer:a"), "customer:a");
    }
}
