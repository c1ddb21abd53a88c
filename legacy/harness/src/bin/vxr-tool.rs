//! `vxr-tool`: a simulated host tool and nothing else. Linked under a tool's name (`ip`,
//! `drbdadm`, `kubectl`, ...) on a simulated node, it sends its command line to the run's scheduler
//! and prints the reply, exactly as `vxr-sim` does under a tool's name
//! (`nodewright_legacy_sim::tool`), with the same messages on the socket.
//!
//! The legacy script runs a thousand such commands in one scenario run, each one a new process:
//! this binary uses nothing but the standard library, so that starting it costs a fraction of
//! starting `vxr-sim`, which links the whole harness. It writes and reads the scheduler's JSON by
//! hand; `tests/tool.rs` checks that it speaks the same protocol.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let tool = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (Some(socket), Ok(node)) = (std::env::var_os("VXR_SIM_SOCKET"), std::env::var("NODE_NAME")) else {
        eprintln!("{tool}: simulated tool started outside a simulation (VXR_SIM_SOCKET and NODE_NAME unset)");
        return ExitCode::from(127);
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut request = String::from("{\"node\":");
    quote(&mut request, &node);
    request.push_str(",\"argv\":[");
    quote(&mut request, &tool);
    for arg in args {
        request.push(',');
        quote(&mut request, &arg.to_string_lossy());
    }
    request.push_str("],\"cwd\":");
    quote(&mut request, &cwd.to_string_lossy());
    request.push('}');
    match call(std::path::Path::new(&socket), request.as_bytes()).and_then(|body| parse_reply(&body)) {
        Ok((stdout, stderr, code)) => {
            let _ = std::io::stdout().write_all(stdout.as_bytes());
            let _ = std::io::stderr().write_all(stderr.as_bytes());
            ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::from(127)
        }
    }
}

/// Sends one length-prefixed message and returns the body of the length-prefixed answer.
fn call(socket: &std::path::Path, body: &[u8]) -> Result<Vec<u8>, String> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    let mut stream =
        UnixStream::connect(socket).map_err(io(&format!("connecting to {}", socket.display())))?;
    let len = u32::try_from(body.len()).map_err(|_| "message over 4 GiB".to_owned())?;
    stream
        .write_all(&len.to_be_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(io("writing to the scheduler socket"))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(io("reading from the scheduler socket"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(format!(
            "malformed message on the scheduler socket: message of {len} bytes"
        ));
    }
    let mut reply = vec![0u8; len];
    stream
        .read_exact(&mut reply)
        .map_err(io("reading from the scheduler socket"))?;
    Ok(reply)
}

/// Appends `s` as a JSON string.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reads the scheduler's reply, `{"stdout": "...", "stderr": "...", "code": N}` (any order, any
/// whitespace), into its three fields.
fn parse_reply(body: &[u8]) -> Result<(String, String, i32), String> {
    let text = std::str::from_utf8(body).map_err(|e| bad(&format!("not UTF-8: {e}")))?;
    let mut p = Parser { rest: text };
    let (mut stdout, mut stderr, mut code) = (None, None, None);
    p.expect('{')?;
    if !p.eat('}') {
        loop {
            let key = p.string()?;
            p.expect(':')?;
            match key.as_str() {
                "stdout" => stdout = Some(p.string()?),
                "stderr" => stderr = Some(p.string()?),
                "code" => code = Some(p.integer()?),
                other => return Err(bad(&format!("unknown field {other}"))),
            }
            if p.eat('}') {
                break;
            }
            p.expect(',')?;
        }
    }
    if !p.rest.trim().is_empty() {
        return Err(bad("text after the reply"));
    }
    match (stdout, stderr, code) {
        (Some(o), Some(e), Some(c)) => Ok((o, e, c)),
        _ => Err(bad("a reply without stdout, stderr or code")),
    }
}

fn bad(what: &str) -> String {
    format!("malformed message on the scheduler socket: {what}")
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\n', '\r']);
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(bad(&format!("expected {c}")))
        }
    }

    fn integer(&mut self) -> Result<i32, String> {
        self.skip_space();
        let end = self
            .rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(self.rest.len(), |(i, _)| i);
        let (digits, rest) = self.rest.split_at(end);
        self.rest = rest;
        digits
            .parse()
            .map_err(|_| bad(&format!("not an exit code: {digits:?}")))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.rest.get(..4).ok_or_else(|| bad("short \\u escape"))?;
        self.rest = &self.rest[4..];
        u32::from_str_radix(digits, 16).map_err(|_| bad(&format!("bad \\u escape {digits}")))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            let end = self
                .rest
                .find(['"', '\\'])
                .ok_or_else(|| bad("unterminated string"))?;
            out.push_str(&self.rest[..end]);
            let quote = self.rest.as_bytes()[end] == b'"';
            self.rest = &self.rest[end + 1..];
            if quote {
                return Ok(out);
            }
            let mut chars = self.rest.chars();
            let escaped = chars.next().ok_or_else(|| bad("unterminated string"))?;
            self.rest = chars.as_str();
            match escaped {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let mut unit = self.hex4()?;
                    if (0xD800..0xDC00).contains(&unit) && self.rest.starts_with("\\u") {
                        self.rest = &self.rest[2..];
                        let low = self.hex4()?;
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                    }
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
                other => return Err(bad(&format!("bad escape \\{other}"))),
            }
        }
    }
}
