//! Command-line parsing the way kubectl's cobra/pflag does it: flags anywhere among the
//! positional arguments, `--flag=value`, `--flag value`, `-fvalue`, `-f=value`, `-f value`, boolean
//! flags with an optional `=true|false`, repeatable flags, and `--` ending the flags.
//!
//! Only the flags of the emulated commands are known; anything else is refused with kubectl's own
//! "unknown flag" message, so a script relying on an unsupported flag fails loudly in simulation too.

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--overwrite`, `--overwrite=false`.
    Bool,
    /// The last occurrence wins.
    String,
    /// Every occurrence is kept (`--from-literal`).
    Array,
    /// Every occurrence is kept and split on commas (`--from-file`, a pflag string slice).
    Slice,
}

/// One flag a command accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
}

const fn flag(long: &'static str, short: Option<char>, kind: Kind) -> Spec {
    Spec { long, short, kind }
}

/// Flags every kubectl command accepts (the ones a script may plausibly pass).
pub(crate) const GLOBAL: &[Spec] = &[
    flag("namespace", Some('n'), Kind::String),
    flag("kubeconfig", None, Kind::String),
    flag("context", None, Kind::String),
    flag("request-timeout", None, Kind::String),
];

/// Flags of `kubectl get`.
pub(crate) const GET: &[Spec] = &[flag("output", Some('o'), Kind::String)];

/// Flags of `kubectl create configmap`.
pub(crate) const CREATE_CONFIGMAP: &[Spec] = &[
    flag("from-literal", None, Kind::Array),
    flag("from-file", None, Kind::Slice),
];

/// Flags of `kubectl patch`.
pub(crate) const PATCH: &[Spec] = &[
    flag("type", None, Kind::String),
    flag("patch", Some('p'), Kind::String),
];

/// Flags of `kubectl annotate`, `label` and `taint`.
pub(crate) const OVERWRITE: &[Spec] = &[flag("overwrite", None, Kind::Bool)];

/// Flags of `kubectl cordon` and `uncordon`.
pub(crate) const NONE: &[Spec] = &[];

/// Every flag of every emulated command: used only to find the command words, the way cobra
/// strips flags before it knows which subcommand runs.
pub(crate) fn all_specs() -> Vec<Spec> {
    [GLOBAL, GET, CREATE_CONFIGMAP, PATCH, OVERWRITE]
        .concat()
        .into_iter()
        .collect()
}

/// The parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub positional: Vec<String>,
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Parsed {
    /// The last value given for a string flag.
    pub fn string(&self, long: &str) -> Option<&str> {
        self.values.get(long).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for a repeatable flag, in order.
    pub fn all(&self, long: &str) -> &[String] {
        self.values.get(long).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The value of a boolean flag (already validated while parsing).
    pub fn bool(&self, long: &str) -> bool {
        self.string(long) == Some("true")
    }
}

/// Splits `argv` into flags and positional arguments. The error is pflag's message, without the
/// `error: ` prefix or the usage hint.
pub(crate) fn parse(argv: &[String], specs: &[Spec]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            parsed.positional.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(spec) = specs.iter().find(|s| s.long == name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match (spec.kind, inline) {
                (Kind::Bool, None) => "true".to_owned(),
                (Kind::Bool, Some(v)) => parse_bool(v, spec.long)?,
                (_, Some(v)) => v.to_owned(),
                (_, None) => match argv.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(format!("flag needs an argument: --{name}")),
                },
            };
            store(&mut parsed, spec, value);
        } else if arg.len() > 1 && arg.starts_with('-') {
            // A run of shorthands, e.g. `-ojsonpath=...` or `-n ns`; pflag reads them one by one.
            let mut rest = &arg[1..];
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                let Some(spec) = specs.iter().find(|s| s.short == Some(c)) else {
                    return Err(format!("unknown shorthand flag: '{c}' in {arg}"));
                };
                if spec.kind == Kind::Bool {
                    let value = match rest.strip_prefix('=') {
                        Some(v) => {
                            let v = parse_bool(v, spec.long)?;
                            rest = "";
                            v
                        }
                        None => "true".to_owned(),
                    };
                    store(&mut parsed, spec, value);
                    continue;
                }
                let value = if let Some(v) = rest.strip_prefix('=') {
                    v.to_owned()
                } else if !rest.is_empty() {
                    rest.to_owned()
                } else if let Some(v) = argv.get(i) {
                    i += 1;
                    v.clone()
                } else {
                    return Err(format!("flag needs an argument: '{c}' in {arg}"));
                };
                store(&mut parsed, spec, value);
                break;
            }
        } else {
            parsed.positional.push(arg.clone());
        }
    }
    Ok(parsed)
}

fn store(parsed: &mut Parsed, spec: &Spec, value: String) {
    let slot = parsed.values.entry(spec.long).or_default();
    match spec.kind {
        Kind::Bool | Kind::String => {
            slot.clear();
            slot.push(value);
        }
        Kind::Array => slot.push(value),
        Kind::Slice => {
            if !value.is_empty() {
                slot.extend(value.split(',').map(str::to_owned));
            }
        }
    }
}

/// Go's `strconv.ParseBool`, normalised to `true`/`false`.
fn parse_bool(v: &str, long: &str) -> Result<String, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok("false".into()),
        _ => Err(format!(
            "invalid argument \"{v}\" for \"--{long}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax"
        )),
    }
}

/// The positional arguments with every flag (and its value) removed, treating unknown flags as
/// taking no value: how cobra finds the subcommand before parsing that subcommand's flags.
pub(crate) fn strip_flags(argv: &[String], specs: &[Spec]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            out.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let takes_value =
                !body.contains('=') && specs.iter().any(|s| s.long == body && s.kind != Kind::Bool);
            if takes_value {
                i += 1;
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            let mut chars = arg[1..].chars();
            let takes_value = chars
                .next()
                .is_some_and(|c| specs.iter().any(|s| s.short == Some(c) && s.kind != Kind::Bool))
                && chars.next().is_none();
            if takes_value {
                i += 1;
            }
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    fn specs() -> Vec<Spec> {
        [GLOBAL, GET].concat()
    }

    #[test]
    fn flags_may_come_before_between_or_after_positionals() {
        let p = parse(
            &argv(&["-n", "ns", "get", "cm", "-oname", "x", "--namespace=other"]),
            &specs(),
        )
        .unwrap();
        assert_eq!(p.positional, ["get", "cm", "x"]);
        assert_eq!(p.string("namespace"), Some("other"));
        assert_eq!(p.string("output"), Some("name"));
    }

    #[test]
    fn a_shorthand_value_may_follow_an_equals_sign() {
        let p = parse(&argv(&["-n=ns", "-o=jsonpath={.a}"]), &specs()).unwrap();
        assert_eq!(p.string("namespace"), Some("ns"));
        assert_eq!(p.string("output"), Some("jsonpath={.a}"));
    }

    #[test]
    fn a_double_dash_ends_the_flags() {
        let p = parse(&argv(&["get", "--", "-n"]), &specs()).unwrap();
        assert_eq!(p.positional, ["get", "-n"]);
    }

    #[test]
    fn a_missing_value_and_an_unknown_flag_use_pflag_messages() {
        assert_eq!(
            parse(&argv(&["get", "-n"]), &specs()).unwrap_err(),
            "flag needs an argument: 'n' in -n"
        );
        assert_eq!(
            parse(&argv(&["--namespace"]), &specs()).unwrap_err(),
            "flag needs an argument: --namespace"
        );
        assert_eq!(
            parse(&argv(&["--bogus"]), &specs()).unwrap_err(),
            "unknown flag: --bogus"
        );
        assert_eq!(
            parse(&argv(&["-bad"]), &specs()).unwrap_err(),
            "unknown shorthand flag: 'b' in -bad"
        );
    }

    #[test]
    fn a_boolean_flag_takes_only_an_inline_value() {
        let s = OVERWRITE;
        let p = parse(&argv(&["--overwrite", "k=v"]), s).unwrap();
        assert!(p.bool("overwrite"));
        assert_eq!(p.positional, ["k=v"]);
        assert!(!parse(&argv(&["--overwrite=F"]), s).unwrap().bool("overwrite"));
        assert!(parse(&argv(&["--overwrite=maybe"]), s).is_err());
    }

    #[test]
    fn from_file_splits_on_commas_and_from_literal_does_not() {
        let p = parse(
            &argv(&["--from-file=a,b", "--from-literal=k=x,y"]),
            CREATE_CONFIGMAP,
        )
        .unwrap();
        assert_eq!(p.all("from-file"), ["a", "b"]);
        assert_eq!(p.all("from-literal"), ["k=x,y"]);
    }

    #[test]
    fn stripping_flags_leaves_the_command_words() {
        let words = strip_flags(
            &argv(&["-n", "ns", "create", "--from-file", "f", "configmap", "x"]),
            &all_specs(),
        );
        assert_eq!(words, ["create", "configmap", "x"]);
    }
}
