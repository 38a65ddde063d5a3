//! Checks that a regular expression is one Envoy's RE2 engine accepts.
//!
//! The `regex` crate's syntax is close to RE2's but larger: it also has verbose mode (`x`),
//! the `u` and `R` flags, class set operations (`&&`, `--`, `~~`), nested classes, and
//! half word boundaries (`\<`, `\b{start}`). RE2 rejects all of those, and caps counted
//! repetition at 1000. Anything the crate cannot parse is rejected too.

use regex_syntax::ast::{self, Ast, Visitor};

const MAX_LEN: usize = 1024;
const MAX_REPEAT: u32 = 1000;

pub fn check_re2(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_LEN {
        return Err(format!("is longer than {MAX_LEN} characters"));
    }
    let ast = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| format!("is not a valid RE2 regular expression: {}", e.kind()))?;
    ast::visit(&ast, Re2Subset).map_err(|why| format!("is not valid RE2: {why}"))?;
    // The crate must also compile it (it checks what the AST parser defers, e.g. sizes).
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|_| "is not a valid RE2 regular expression (too large or malformed)".to_string())
}

struct Re2Subset;

impl Visitor for Re2Subset {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), String> {
        match ast {
            Ast::Flags(f) => check_flags(&f.flags),
            Ast::Group(g) => match &g.kind {
                ast::GroupKind::NonCapturing(flags) => check_flags(flags),
                _ => Ok(()),
            },
            Ast::Repetition(r) => match &r.op.kind {
                ast::RepetitionKind::Range(range) => {
                    let (a, b) = match range {
                        ast::RepetitionRange::Exactly(n) => (*n, *n),
                        ast::RepetitionRange::AtLeast(n) => (*n, *n),
                        ast::RepetitionRange::Bounded(a, b) => (*a, *b),
                    };
                    if a.max(b) > MAX_REPEAT {
                        Err(format!("counted repetition above {MAX_REPEAT}"))
                    } else {
                        Ok(())
                    }
                }
                _ => Ok(()),
            },
            Ast::Assertion(a) => match a.kind {
                ast::AssertionKind::StartLine
                | ast::AssertionKind::EndLine
                | ast::AssertionKind::StartText
                | ast::AssertionKind::EndText
                | ast::AssertionKind::WordBoundary
                | ast::AssertionKind::NotWordBoundary => Ok(()),
                _ => Err("half word boundaries (\\< \\> \\b{start} \\b{end})".into()),
            },
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), String> {
        match item {
            ast::ClassSetItem::Bracketed(_) => Err("nested character classes".into()),
            _ => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), String> {
        Err("class set operations (&&, --, ~~)".into())
    }
}

fn check_flags(flags: &ast::Flags) -> Result<(), String> {
    for item in &flags.items {
        if let ast::FlagsItemKind::Flag(flag) = &item.kind {
            let name = match flag {
                ast::Flag::IgnoreWhitespace => "x",
                ast::Flag::Unicode => "u",
                ast::Flag::CRLF => "R",
                _ => continue,
            };
            return Err(format!("the flag '{name}' (RE2 knows i, m, s and U)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_re2() {
        for ok in [
            "^/api/v[0-9]+/.*$",
            "(?i)chrome",
            "[[:alpha:]]+",
            "\\d{1,3}",
            "(?P<id>[a-f0-9]+)",
            "\\pL+",
            "a|b",
        ] {
            assert!(check_re2(ok).is_ok(), "{ok}: {:?}", check_re2(ok));
        }
    }

    #[test]
    fn rejects_what_re2_rejects() {
        for (bad, why) in [
            ("(?x) a b", "flag 'x'"),
            ("[a-z&&[^aeiou]]", "class set"),
            ("[a[bc]]", "nested"),
            ("\\<word\\>", "half word"),
            ("a{1001}", "repetition"),
            ("(unclosed", "not a valid"),
            ("a(?=b)", "not a valid"),
            ("(a)\\1", "not a valid"),
        ] {
            let err = check_re2(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
