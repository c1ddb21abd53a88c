//! Test support for the web UI's browser tests: a headless Chromium (Debian's `chromium`) driven
//! over the DevTools protocol by a small client, and axe-core (installed into `.tools/` by
//! `scripts/install-tools`). Used only as a dev-dependency, by `nodewright-ui` and the demo's tests.

// Test support: a failed expectation (a browser that does not start, a page that does not render)
// is a panic that fails the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// A Chromium process and one page of it, attached over the DevTools protocol.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: String,
    /// Console errors, uncaught exceptions and failed loads the page reported.
    pub errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and attaches to a blank page.
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium is not installed: run scripts/install-tools");
        // Chromium writes the port it chose and the browser's path into the profile.
        let active = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_owned(), path.trim().to_owned());
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not start its DevTools server"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream).unwrap();
        let mut browser = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
            _profile: profile,
        };
        let target = browser.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let text = match self.ws.read().unwrap() {
                Message::Text(t) => t.to_string(),
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.event(&v);
        }
    }

    fn event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", v["params"]["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => self
                .errors
                .push(format!("console.error: {}", v["params"]["args"])),
            Some("Log.entryAdded") if v["params"]["entry"]["level"] == "error" => self.errors.push(format!(
                "{}: {}",
                v["params"]["entry"]["url"], v["params"]["entry"]["text"]
            )),
            _ => {}
        }
    }

    /// Calls a DevTools method on the browser.
    pub fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    /// Calls a DevTools method on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"))
    }

    /// Evaluates `expression` in the page; the exception it threw, if any.
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Polls `expression` until it is true; the time it took, or a panic naming `what`.
    ///
    /// A poll that lands while the page is between documents (no `body` yet) throws; that counts
    /// as "not yet", and the last such exception is reported if the wait times out.
    pub fn wait_for(&mut self, what: &str, expression: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        let mut last_exception = None;
        loop {
            match self.try_eval(expression) {
                Ok(Value::Bool(true)) => return start.elapsed(),
                Ok(_) => {}
                Err(e) => last_exception = Some(e),
            }
            if start.elapsed() > timeout {
                let body = self.try_eval("document.getElementById('main').innerText");
                panic!(
                    "timed out waiting for {what}; the page shows:\n{body:?}\nlast exception: {last_exception:?}\nerrors: {:#?}",
                    self.errors
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` and waits until the view has rendered its data once.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            &format!("{url} to render"),
            "document.readyState === 'complete' && document.body && Number(document.body.dataset.rendered || 0) >= 1",
            Duration::from_secs(15),
        );
    }

    /// The text of the page's `main`.
    pub fn text(&mut self) -> String {
        self.eval("document.getElementById('main').innerText")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Presses and releases a key.
    pub fn key(&mut self, key: &str, code: &str, vk: u32, text: Option<&str>) {
        let mut down = json!({"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk});
        if let Some(t) = text {
            down["text"] = json!(t);
        }
        self.call("Input.dispatchKeyEvent", down);
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk}),
        );
    }

    /// Serious and critical accessibility violations on the page, as axe-core reports them.
    pub fn axe(&mut self, axe_source: &str) -> Vec<String> {
        if self.eval("typeof axe === 'undefined'") == json!(true) {
            self.eval(&format!("{axe_source};true"));
        }
        let v = self.eval(
            "axe.run(document, {resultTypes: ['violations']}).then(r => ({passes: r.passes.length, bad: r.violations \
             .filter(v => v.impact === 'serious' || v.impact === 'critical') \
             .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))}))",
        );
        // A check that ran no rule would pass anything.
        assert!(
            v["passes"].as_u64().unwrap() > 10,
            "axe-core ran too few rules: {v}"
        );
        serde_json::from_value(v["bad"].clone()).unwrap()
    }

    /// With `NODEWRIGHT_UI_SCREENSHOTS=<dir>`, saves the page as `<dir>/ui-<name>.png`.
    pub fn screenshot(&mut self, name: &str) {
        let Some(dir) = std::env::var_os("NODEWRIGHT_UI_SCREENSHOTS") else {
            return;
        };
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": false}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("ui-{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// axe-core's source, from `.tools/` at the repository root.
pub fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node_modules/axe-core/axe.min.js");
    let mut text = String::new();
    std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/install-tools", path.display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}
