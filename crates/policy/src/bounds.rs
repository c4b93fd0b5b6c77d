//! How deep and how long a governance policy may be, checked on the text
//! before Cedar sees it.
//!
//! Cedar's parser, validator and evaluator recurse over the expression
//! tree, so a policy nested deeply enough, or with a long enough chain of
//! operators, overflows the stack of the thread that parses or evaluates
//! it and aborts the process (30,000 parentheses, or an 8,000-term `&&`
//! chain, from the governance key, took the node down). A policy's tree is
//! at most as deep as its brackets nest plus the operators it holds, so
//! both are bounded here, by a pass over the tokens that allocates
//! nothing: string literals (with their escapes) and `//` comments are
//! skipped, brackets `(`, `[`, `{` counted for nesting, and every
//! operator (`&&`, `||`, comparisons, `+`, `-`, `*`, `!`, `.`, and the
//! keywords `in`, `has`, `like`, `is`, `if`) counted per policy (policies
//! end at a `;` outside brackets).
//!
//! At the limits, parsing, validating and evaluating a policy takes well
//! under half the 2 MiB stack of the node's threads in a debug build
//! (`bounds::tests::the_worst_accepted_policy_fits_half_a_thread_stack`).

use crate::error::GovernanceError;

/// Deepest bracket nesting, the policy's own `(…)` and `when { … }`
/// included; the default policies nest [`DEFAULT_NESTING`] deep.
pub const MAX_NESTING: usize = 16;

/// Most operators in one policy; the largest default policy holds
/// [`DEFAULT_OPERATORS`].
pub const MAX_OPERATORS: usize = 256;

/// How deep the default policies nest (checked by a test).
pub const DEFAULT_NESTING: usize = 4;
/// The most operators a default policy holds (checked by a test).
pub const DEFAULT_OPERATORS: usize = 65;

const KEYWORD_OPERATORS: [&[u8]; 5] = [b"in", b"has", b"like", b"is", b"if"];

/// How deep a text's brackets nest, and the most operators one of its
/// policies holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    pub nesting: usize,
    pub operators: usize,
}

/// Measures `text` in one pass over its bytes, allocating nothing.
pub fn measure(text: &str) -> Size {
    let bytes = text.as_bytes();
    let mut size = Size::default();
    let (mut depth, mut operators) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match b {
            b'"' => {
                // A string literal: skip to its closing quote.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                size.nesting = size.nesting.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b';' if depth == 0 => operators = 0,
            b'&' | b'|' if next == Some(b) => {
                operators += 1;
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'.' => {
                operators += 1;
                if next == Some(b'=') {
                    i += 1;
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if KEYWORD_OPERATORS.contains(&&bytes[start..i]) {
                    operators += 1;
                    size.operators = size.operators.max(operators);
                }
                continue;
            }
            _ => {}
        }
        size.operators = size.operators.max(operators);
        i += 1;
    }
    size
}

/// Checks `text` against [`MAX_NESTING`] and [`MAX_OPERATORS`]; what it
/// does not bound (a text that does not lex, say) is left to Cedar.
pub fn check(text: &str) -> Result<(), GovernanceError> {
    let size = measure(text);
    if size.nesting > MAX_NESTING {
        return Err(GovernanceError::TooDeep { limit: MAX_NESTING });
    }
    if size.operators > MAX_OPERATORS {
        return Err(GovernanceError::TooManyOperators {
            limit: MAX_OPERATORS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{GovernancePolicies, DEFAULT_POLICIES};

    fn policy(condition: &str) -> String {
        format!("@id(\"p\") permit (principal, action, resource) when {{ {condition} }};")
    }

    fn code(text: &str) -> &'static str {
        match GovernancePolicies::parse(1, text) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn the_shapes_that_overflowed_the_stack_are_refused_unparsed() {
        // 30,000 parentheses and an 8,000-term `&&` chain.
        let parens = policy(&format!("{}true{}", "(".repeat(30_000), ")".repeat(30_000)));
        assert_eq!(code(&parens), "governance.too_deep");
        let chain = policy(&vec!["principal.suspended"; 8_000].join(" && "));
        assert_eq!(code(&chain), "governance.too_many_operators");
        // Brackets of any kind, and if-then-else chains.
        let sets = policy(&format!("{}1{} == 1", "[".repeat(40), "]".repeat(40)));
        assert_eq!(code(&sets), "governance.too_deep");
        let ifs = policy(&format!(
            "{}true{}",
            "if true then ".repeat(300),
            " else false".repeat(300)
        ));
        assert_eq!(code(&ifs), "governance.too_many_operators");
    }

    #[test]
    fn the_default_policies_are_well_within_bounds() {
        assert_eq!(
            measure(DEFAULT_POLICIES),
            Size {
                nesting: DEFAULT_NESTING,
                operators: DEFAULT_OPERATORS
            }
        );
        const { assert!(DEFAULT_NESTING * 2 <= MAX_NESTING) };
        const { assert!(DEFAULT_OPERATORS * 3 <= MAX_OPERATORS) };
    }

    #[test]
    fn strings_and_comments_do_not_count() {
        let noise = format!(
            "// {}\n@id(\"{}\") permit (principal, action, resource) when {{ context.purpose == \"{}\\\"(\" }};",
            "((((&&".repeat(100),
            "[".repeat(100),
            "&& ".repeat(500)
        );
        assert_eq!(check(&noise), Ok(()));
        // Limits count per policy: many small policies are fine.
        let many: String = (0..100)
            .map(|i| {
                format!(
                    "@id(\"p{i}\") permit (principal, action, resource) when {{ {} }};",
                    vec!["principal.suspended"; 50].join(" && ")
                )
            })
            .collect();
        assert_eq!(check(&many), Ok(()));
        // Identifiers holding a keyword are not the keyword.
        let names = policy(&vec!["context.index"; 120].join(" || "));
        assert_eq!(check(&names), Ok(()));
    }

    #[test]
    fn at_the_limits_a_policy_is_accepted() {
        // `when { … }` is the first level.
        let deepest = policy(&format!(
            "{}principal.suspended{}",
            "(".repeat(MAX_NESTING - 1),
            ")".repeat(MAX_NESTING - 1)
        ));
        assert_eq!(code(&deepest), "ok");
        let one_more = policy(&format!(
            "{}principal.suspended{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        ));
        assert_eq!(code(&one_more), "governance.too_deep");
        // `principal.suspended` is one operator, `&&` another.
        let longest = policy(&vec!["principal.suspended"; MAX_OPERATORS / 2].join(" && "));
        assert_eq!(check(&longest), Ok(()));
        let over = policy(&vec!["principal.suspended"; MAX_OPERATORS / 2 + 1].join(" && "));
        assert_eq!(code(&over), "governance.too_many_operators");
    }

    /// The worst policy the bounds accept (nested to the limit around an
    /// operator chain at the limit) is parsed, validated and evaluated on
    /// a thread with 1 MiB of stack: half of what the node's threads have.
    #[test]
    fn the_worst_accepted_policy_fits_half_a_thread_stack() {
        let inner = MAX_NESTING - 1;
        let chain = vec!["principal.suspended"; MAX_OPERATORS / 2].join(" || ");
        let worst = [
            policy(&format!(
                "{}{chain}{}",
                "(".repeat(inner),
                ")".repeat(inner)
            )),
            policy(&format!(
                "{}true{}",
                "if principal.suspended then ".repeat(MAX_OPERATORS / 2),
                " else false".repeat(MAX_OPERATORS / 2)
            )),
        ];
        for text in worst {
            assert!(check(&text).is_ok());
            let decided = std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let mut engine = crate::PolicyEngine::new();
                    engine.install_governance(1, &text).map_err(|e| e.code())?;
                    let request = crate::AccessRequest {
                        requester: crate::Requester {
                            did: "did:key:z6MkRequester".into(),
                            ..crate::Requester::default()
                        },
                        patient: "did:key:z6MkPatient".into(),
                        action: crate::Action::Read,
                        purpose: crate::PurposeOfUse::Treatment,
                        record: crate::RecordRef {
                            id: "r".into(),
                            resource_type: "Observation".into(),
                            category: None,
                        },
                        time: 0,
                        break_glass_justification: None,
                    };
                    Ok::<_, &'static str>(engine.decide(&request).effect)
                })
                .unwrap()
                .join()
                .unwrap();
            assert!(decided.is_ok(), "{decided:?}");
        }
    }
}
