//! How every long-running Nodewright command logs: to standard error, as text (colour only on a
//! terminal) or as one JSON object per line for a log pipeline, at a level from `--log-level`,
//! else `$RUST_LOG`, else `info`. The options ([`LogArgs`]) are declared once; checking a level
//! ([`parse_log_level`]) is pure; [`init`] installs the subscriber and is the only I/O here.

use std::sync::OnceLock;

use anyhow::Context as _;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event; ANSI colour only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the event's fields).
    Json,
}

/// The logging options of every Nodewright command, declared once.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// How to write log lines: `text`, or `json` (one object per line, for a log pipeline).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// The least severe level logged: error, warn, info, debug or trace, optionally with
    /// per-module levels (`info,kube=warn`) [default: $RUST_LOG, else info].
    #[arg(long, global = true, value_parser = parse_log_level, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `--log-level`: comma-separated directives, each a level or `module=level`. Stricter
/// than `RUST_LOG`'s grammar, where a misspelt level (`verbose`) silently means a module name.
pub fn parse_log_level(text: &str) -> Result<String, String> {
    let is_level = |word: &str| LEVELS.contains(&word.to_ascii_lowercase().as_str());
    let is_module = |word: &str| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'))
    };
    if text.trim().is_empty() {
        return Err(format!("empty; expected one of {}", LEVELS.join(", ")));
    }
    for directive in text.split(',').map(str::trim) {
        let ok = match directive.split_once('=') {
            Some((module, level)) => is_module(module) && is_level(level),
            None => is_level(directive),
        };
        if !ok {
            return Err(format!(
                "{directive:?} is not a level ({}) nor module=level",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(text.trim().to_owned())
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format [`init`] installed, if it ran: how the command's last words (its error) must be
/// written so that a JSON pipeline can read them.
pub fn installed_format() -> Option<LogFormat> {
    FORMAT.get().copied()
}

/// Installs the process's logger on standard error. `$RUST_LOG` is read only when `--log-level`
/// is not given, and a malformed one is an error naming it rather than a silent `info`.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let filter = match &args.log_level {
        Some(level) => {
            tracing_subscriber::EnvFilter::try_new(level).with_context(|| format!("--log-level {level:?}"))?
        }
        None => match std::env::var("RUST_LOG") {
            Ok(value) if !value.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&value)
                .with_context(|| format!("RUST_LOG={value:?}"))?,
            _ => tracing_subscriber::EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    // Installed once per process; a second call (a test that runs two commands) keeps the first.
    if installed.is_ok() {
        let _ = FORMAT.set(args.log_format);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_level_or_module_levels_are_accepted_as_given() {
        assert_eq!(parse_log_level("debug").unwrap(), "debug");
        assert_eq!(parse_log_level(" INFO ").unwrap(), "INFO");
        assert_eq!(
            parse_log_level("info,kube=warn,nodewright_bridge::writer=trace").unwrap(),
            "info,kube=warn,nodewright_bridge::writer=trace"
        );
    }

    #[test]
    fn a_misspelt_level_is_refused_naming_it_and_the_levels() {
        let err = parse_log_level("verbose").unwrap_err();
        assert_eq!(
            err,
            "\"verbose\" is not a level (off, error, warn, info, debug, trace) nor module=level"
        );
        assert!(
            parse_log_level("info,kube=loud")
                .unwrap_err()
                .contains("\"kube=loud\"")
        );
        assert!(parse_log_level("=info").is_err());
        assert!(parse_log_level("").unwrap_err().starts_with("empty"));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn the_default_is_text_and_the_level_from_the_environment() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from(["test"]).unwrap();
        assert_eq!((cli.log.log_format, cli.log.log_level), (LogFormat::Text, None));
        let cli = Cli::try_parse_from(["test", "--log-format", "json", "--log-level", "warn"]).unwrap();
        assert_eq!(
            (cli.log.log_format, cli.log.log_level.as_deref()),
            (LogFormat::Json, Some("warn"))
        );
        assert!(Cli::try_parse_from(["test", "--log-format", "yaml"]).is_err());
    }
}
