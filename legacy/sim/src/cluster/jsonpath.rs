//! The subset of kubectl's JSONPath templates (`k8s.io/client-go/util/jsonpath`) the legacy script
//! uses: literal text, `{.field.path}` with `\.` escapes in keys, `{.a.*}` and `{.a[*]}` / `{.a[N]}`,
//! quoted literals such as `{"\n"}`, and `@`/`$`. Missing fields print nothing, as kubectl allows
//! missing keys; maps and lists print as Go's `json.Marshal` does.
//!
//! Parsing follows the Go parser's scanning rules so malformed templates fail with its messages;
//! constructs outside the subset (`range`, filters, recursive descent, slices) are refused rather
//! than approximated.

use serde_json::Value;

use super::golang;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    Action(Vec<Step>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    Field(String),
    Wildcard,
    Index(usize),
    Literal(String),
}

/// Why a template was refused.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ParseError {
    /// The Go parser's own message.
    Syntax(String),
    /// Valid kubectl JSONPath the simulation does not implement.
    Unsupported(String),
}

/// Parses a whole `-o jsonpath=` template.
pub(crate) fn parse(template: &str) -> Result<Vec<Piece>, ParseError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let (steps, after) = parse_action(&rest[open + 1..])?;
        pieces.push(Piece::Action(steps));
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

fn syntax(msg: impl Into<String>) -> ParseError {
    ParseError::Syntax(msg.into())
}

fn unsupported(what: &str) -> ParseError {
    ParseError::Unsupported(format!(
        "the simulated cluster does not implement {what} in JSONPath templates"
    ))
}

fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

/// Parses the inside of one `{...}`; returns the steps and the input after the closing brace.
fn parse_action(mut s: &str) -> Result<(Vec<Step>, &str), ParseError> {
    let mut steps = Vec::new();
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((steps, after));
        }
        if s.starts_with("[?(") {
            return Err(unsupported("filters"));
        }
        if s.starts_with("..") {
            return Err(unsupported("recursive descent"));
        }
        let Some(c) = s.chars().next() else {
            return Err(syntax("unclosed action"));
        };
        match c {
            '\r' | '\n' => return Err(syntax("unclosed action")),
            ' ' | '@' | '$' => s = &s[1..],
            '.' => {
                let body = &s[1..];
                let mut end = body.len();
                let mut chars = body.char_indices();
                while let Some((i, ch)) = chars.next() {
                    if ch == '\\' {
                        chars.next();
                    } else if is_terminator(ch) {
                        end = i;
                        break;
                    }
                }
                let raw = &body[..end];
                if raw == "*" {
                    steps.push(Step::Wildcard);
                } else {
                    steps.push(Step::Field(raw.replace('\\', "")));
                }
                s = &body[end..];
            }
            '[' => {
                let Some(close) = s.find(']') else {
                    return Err(syntax("unterminated array"));
                };
                let inner = s[1..close].trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else {
                    return Err(unsupported("array slices, unions and negative indexes"));
                }
                s = &s[close + 1..];
            }
            '"' | '\'' => {
                let (text, after) = parse_quote(s, c)?;
                steps.push(Step::Literal(text));
                s = after;
            }
            c if c == '+' || c == '-' || c.is_ascii_digit() => {
                return Err(unsupported("number literals"));
            }
            c if c == '_' || c.is_alphanumeric() => {
                return Err(unsupported("range, end and other identifiers"));
            }
            c => {
                return Err(syntax(format!(
                    "unrecognized character in action: U+{:04X} '{c}'",
                    c as u32
                )));
            }
        }
    }
}

/// A quoted literal starting at `s` (which begins with `end`), per the Go scanner and its
/// `UnquoteExtend`.
fn parse_quote(s: &str, end: char) -> Result<(String, &str), ParseError> {
    let mut chars = s.char_indices().skip(1);
    let close = loop {
        match chars.next() {
            None | Some((_, '\n')) => return Err(syntax("unterminated quoted string")),
            Some((i, '\\')) => match chars.next() {
                None | Some((_, '\n')) => break i,
                Some(_) => {}
            },
            Some((i, ch)) if ch == end => break i,
            Some(_) => {}
        }
    };
    let raw = &s[..close + end.len_utf8()];
    let text = unquote(&raw[1..raw.len() - 1])
        .ok_or_else(|| syntax(format!("unquote string {raw} error invalid syntax")))?;
    Ok((text, &s[close + end.len_utf8()..]))
}

fn unquote(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
            let digits: String = chars.by_ref().take(n).collect();
            if digits.len() != n {
                return None;
            }
            u32::from_str_radix(&digits, 16).ok()
        };
        let ch = match e {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' | '"' | '\'' => e,
            'x' => char::from_u32(hex(&mut chars, 2)?)?,
            'u' => char::from_u32(hex(&mut chars, 4)?)?,
            'U' => char::from_u32(hex(&mut chars, 8)?)?,
            _ => return None,
        };
        out.push(ch);
    }
    Some(out)
}

/// Runs a parsed template against an object, as `kubectl get -o jsonpath=` prints it.
pub(crate) fn execute(pieces: &[Piece], data: &Value) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Action(steps) => {
                let mut current: Vec<&Value> = vec![data];
                let mut literal: Option<&str> = None;
                for step in steps {
                    match step {
                        Step::Literal(t) => {
                            literal = Some(t);
                            current.clear();
                        }
                        Step::Field(name) => {
                            literal = None;
                            current = current
                                .iter()
                                .filter_map(|v| v.as_object().and_then(|m| m.get(name)))
                                .collect();
                        }
                        Step::Wildcard => {
                            literal = None;
                            current = current
                                .iter()
                                .flat_map(|v| match v {
                                    Value::Object(m) => m.values().collect::<Vec<_>>(),
                                    Value::Array(a) => a.iter().collect(),
                                    _ => Vec::new(),
                                })
                                .collect();
                        }
                        Step::Index(n) => {
                            literal = None;
                            current = current
                                .iter()
                                .filter_map(|v| v.as_array().and_then(|a| a.get(*n)))
                                .collect();
                        }
                    }
                }
                if let Some(t) = literal {
                    out.push_str(t);
                    continue;
                }
                for (i, v) in current.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&text(v));
                }
            }
        }
    }
    out
}

/// One result as kubectl prints it: maps and lists as JSON, scalars as Go's `fmt.Print`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => golang::json(v),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(template: &str, data: &Value) -> String {
        execute(&parse(template).unwrap(), data)
    }

    #[test]
    fn an_escaped_dot_stays_inside_the_key() {
        let node = json!({"metadata": {"annotations": {"vx-rail.io/phase": "ready"}}});
        assert_eq!(run(r"{.metadata.annotations.vx-rail\.io/phase}", &node), "ready");
    }

    #[test]
    fn a_missing_field_prints_nothing() {
        let node = json!({"spec": {}});
        assert_eq!(run("{.spec.taints}", &node), "");
        assert_eq!(run("{.spec.unschedulable}x", &node), "x");
    }

    #[test]
    fn lists_print_as_go_json_and_booleans_as_words() {
        let node = json!({"spec": {"unschedulable": true, "taints": [{"key": "k", "effect": "NoSchedule"}]}});
        assert_eq!(
            run("{.spec.taints}", &node),
            r#"[{"effect":"NoSchedule","key":"k"}]"#
        );
        assert_eq!(run("{.spec.unschedulable}", &node), "true");
    }

    #[test]
    fn text_around_actions_and_quoted_literals_are_printed() {
        let cm = json!({"data": {"a": "1"}});
        assert_eq!(run(r#"'{.data.a}'{"\n"}"#, &cm), "'1'\n");
    }

    #[test]
    fn several_results_are_separated_by_spaces() {
        let list = json!({"items": [{"n": "a"}, {"n": "b"}]});
        assert_eq!(run("{.items[*].n}", &list), "a b");
        assert_eq!(run("{.items[1].n}", &list), "b");
    }

    #[test]
    fn malformed_templates_fail_with_the_go_parser_messages() {
        assert_eq!(
            parse("{.data.a"),
            Err(ParseError::Syntax("unclosed action".into()))
        );
        assert_eq!(
            parse("{%}"),
            Err(ParseError::Syntax(
                "unrecognized character in action: U+0025 '%'".into()
            ))
        );
        assert_eq!(
            parse(r#"{"a\x"}"#),
            Err(ParseError::Syntax(
                r#"unquote string "a\x" error invalid syntax"#.into()
            ))
        );
    }

    #[test]
    fn unsupported_constructs_are_refused_not_guessed() {
        assert!(matches!(
            parse("{range .items[*]}{end}"),
            Err(ParseError::Unsupported(_))
        ));
        assert!(matches!(parse("{..name}"), Err(ParseError::Unsupported(_))));
    }
}
