//! `nodewright parse`: runs one of the parsers on a file or standard input and prints the typed
//! result as JSON — for support engineers reading what a site sent them. The formats and their
//! detection are `nodewright-parsers`' registry ([`p::formats`], [`p::detect`]); this module reads
//! the input and prints.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use nodewright_parsers as p;

/// Arguments of `nodewright parse`.
#[derive(clap::Args)]
pub struct Args {
    /// The format (see `--list`), or `auto` to detect it.
    #[arg(required_unless_present = "list")]
    format: Option<String>,
    /// The file to read; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// List the formats and exit.
    #[arg(long)]
    list: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        for format in p::formats() {
            crate::out(&format!("{:<27} {}\n", format.name, format.description));
        }
        crate::out(&format!("{:<27} detect the format\n", "auto"));
        return Ok(());
    }
    let format = args.format.unwrap_or_default();
    let (source, input) = read_input(args.file)?;
    let value = if format == "auto" {
        let detected = p::detect(&input)
            .with_context(|| format!("{source}: not a known format (see `nodewright parse --list`)"))?;
        serde_json::to_value(detected)?
    } else {
        let Some(format) = p::find_format(&format) else {
            anyhow::bail!("unknown format {format:?} (see `nodewright parse --list`)");
        };
        format.parse(&input).map_err(|e| {
            anyhow::anyhow!(
                "{source}:{}:{}: expected {}, found {}",
                e.line,
                e.column,
                e.expected,
                e.found
            )
        })?
    };
    crate::out(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    Ok(())
}

fn read_input(file: Option<PathBuf>) -> anyhow::Result<(String, String)> {
    let mut bytes = Vec::new();
    let source = match file {
        Some(path) if path.as_os_str() != "-" => {
            bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            path.display().to_string()
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            "<stdin>".to_owned()
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{source}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((source, text))
}
