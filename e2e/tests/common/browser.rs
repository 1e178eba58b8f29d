//! Headless Chromium driven over WebDriver, for the tests of the web console.
//!
//! A [`Browser`] runs Debian's `chromedriver` (package `chromium-driver`) on a free loopback port
//! and opens one WebDriver session with Debian's `chromium` in it. Both are installed by
//! `scripts/setup-debian.sh --test` (so by `make test`); when either is missing the test fails
//! naming the package, it never passes without having run a browser. Screenshots go to
//! `target/console-screenshots/NAME.png`, where a person (or the file tool) can look at them.
//! chromedriver runs in a process group of its own, and the group (Chromium included) is
//! killed on [`Browser::shutdown`] and on drop, so a failing test leaves no browser running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::time::Instant;

/// The browser, from Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The WebDriver server, from Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page, an element or chromedriver itself gets to appear. Generous: two cores may
/// be compiling or running other tests at the same time.
pub const WAIT: Duration = Duration::from_secs(20);

/// The window Chromium renders into (and so the size of every screenshot).
const WINDOW_SIZE: &str = "--window-size=1280,900";

/// A headless Chromium session and the chromedriver serving it.
pub struct Browser {
    /// The WebDriver session; `None` once closed.
    client: Option<Client>,
    /// chromedriver, leader of the process group Chromium also runs in.
    chromedriver: DriverProcess,
    /// The port chromedriver listens on (127.0.0.1).
    port: u16,
    /// Holds chromedriver's log; removed with the browser.
    log_dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session, with `extra_arguments` added
    /// to Chromium's command line (e.g. `--ignore-certificate-errors` for a test server's own
    /// CA). Panics, naming the package to install, when Chromium or chromedriver is missing.
    pub async fn start(extra_arguments: &[&str]) -> Browser {
        require_installed(CHROMIUM, "chromium");
        require_installed(CHROMEDRIVER, "chromium-driver");

        let log_dir = tempfile::tempdir().expect("a directory for chromedriver's log");
        let log_path = log_dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).expect("chromedriver's log file");
        let port = palisade_testkit::free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file handle"))
                .stderr(log)
                // A group of its own: Chromium and its helpers join it, and killing the group
                // ends them all even when chromedriver dies without closing its session.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|error| panic!("{CHROMEDRIVER} does not start: {error}"))
        };
        let mut chromedriver = DriverProcess(Some(child));
        wait_until_driver_answers(&mut chromedriver, port, &log_path).await;

        let mut arguments = vec![
            "--headless=new",
            // CI runs as root, and Chromium refuses to sandbox itself as root.
            "--no-sandbox",
            // /dev/shm is small in containers; Chromium crashes pages when it fills up.
            "--disable-dev-shm-usage",
            WINDOW_SIZE,
        ];
        arguments.extend_from_slice(extra_arguments);
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": arguments }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS connector is needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "chromedriver on port {port} could not start {CHROMIUM}: {error}\n\
                     chromedriver's log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        Browser {
            client: Some(client),
            chromedriver,
            port,
            log_dir,
        }
    }

    /// The WebDriver session, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the WebDriver session is open until shutdown")
    }

    /// The port chromedriver listens on.
    pub fn driver_port(&self) -> u16 {
        self.port
    }

    /// Loads `url`; `page` names it in failure messages.
    pub async fn goto(&self, page: &str, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("{page}: loading {url} failed: {error}"));
    }

    /// The path of the page the browser shows (e.g. `/console/alerts`).
    pub async fn current_path(&self) -> String {
        self.client()
            .current_url()
            .await
            .unwrap_or_else(|error| panic!("the browser's current URL: {error}"))
            .path()
            .to_string()
    }

    /// The full URL of the page the browser shows.
    pub async fn current_url(&self) -> String {
        self.client()
            .current_url()
            .await
            .unwrap_or_else(|error| panic!("the browser's current URL: {error}"))
            .to_string()
    }

    /// What chromedriver logged so far (its failures explain a session that went wrong).
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// Waits up to [`WAIT`] for an element matching `css` on the page `page`.
    pub async fn wait_for(&self, page: &str, css: &str) -> Element {
        match self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                let state = self.describe_failure(page).await;
                panic!(
                    "{page}: no element `{css}` within {} s ({error}); {state}",
                    WAIT.as_secs()
                )
            }
        }
    }

    /// Where the browser is and what it shows, for a failure message; saves a screenshot
    /// `failed-PAGE.png` of it.
    async fn describe_failure(&self, page: &str) -> String {
        let url = self.current_url().await;
        let text = self
            .client()
            .execute(
                "return document.body ? document.body.innerText.slice(0, 800) : '';",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|text| text.as_str().map(str::to_string))
            .unwrap_or_default();
        let name: String = page
            .chars()
            .map(|char| {
                if char.is_ascii_alphanumeric() {
                    char
                } else {
                    '-'
                }
            })
            .collect();
        let screenshot = self.screenshot(&format!("failed-{name}")).await;
        format!(
            "the browser is at {url}, screenshot {}, page text:\n{text}",
            screenshot.display()
        )
    }

    /// Every element matching `css` on the page `page` (maybe none).
    pub async fn find_all(&self, page: &str, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{page}: looking for `{css}` failed: {error}"))
    }

    /// Clicks `element` (a link, a submit button) and waits until the browser has loaded the
    /// page it leads to, even when that page has the same URL. `what` names the element and the
    /// page it is on, for failure messages.
    pub async fn click_and_wait_for_page(&self, element: &Element, what: &str) {
        // A mark on the current document: a new document does not carry it.
        self.client()
            .execute("window.__palisadeOldPage = true; return null;", Vec::new())
            .await
            .unwrap_or_else(|error| panic!("marking the page before clicking {what}: {error}"));
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("clicking {what}: {error}"));
        let deadline = Instant::now() + WAIT;
        loop {
            // Errors while the new page replaces the old one (no document yet) mean "not yet".
            let loaded = self
                .client()
                .execute(
                    "return window.__palisadeOldPage === undefined \
                     && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await;
            if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            if Instant::now() > deadline {
                let state = self.describe_failure(what).await;
                panic!(
                    "clicking {what} loaded no new page within {} s; {state}",
                    WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window as `target/console-screenshots/NAME.png` (workspace target
    /// directory) and prints its path; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|error| panic!("screenshot {name}: {error}"));
        let directory = screenshot_dir();
        std::fs::create_dir_all(&directory)
            .unwrap_or_else(|error| panic!("creating {}: {error}", directory.display()));
        let path = directory.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
        println!("screenshot {name}: {}", path.display());
        path
    }

    /// Closes the WebDriver session (Chromium exits) and stops chromedriver.
    pub async fn shutdown(mut self) {
        if let Some(client) = self.client.take() {
            client
                .close()
                .await
                .unwrap_or_else(|error| panic!("closing the WebDriver session: {error}"));
        }
        self.chromedriver.kill_group();
    }
}

/// chromedriver's process, whose whole group is killed when it is dropped.
struct DriverProcess(Option<Child>);

impl DriverProcess {
    /// SIGKILL to the process group chromedriver leads (Chromium and its helpers are in it),
    /// then reaps chromedriver. Idempotent.
    fn kill_group(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        // The group id is chromedriver's pid (process_group(0)); `kill -- -PGID` signals the
        // group. The crate forbids unsafe code, so no libc call.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Fails the test, naming the Debian package, when `program` is not installed.
fn require_installed(program: &str, package: &str) {
    assert!(
        Path::new(program).is_file(),
        "{program} is missing: install Debian's `{package}` package \
         (`apt-get install -y chromium chromium-driver`; `scripts/setup-debian.sh --test` and \
         `make test` do it)"
    );
}

/// `target/console-screenshots` in the workspace's target directory (the parent of the
/// `target/tmp` that cargo gives integration tests, wherever CARGO_TARGET_DIR puts it).
pub fn screenshot_dir() -> PathBuf {
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    target_tmp
        .parent()
        .unwrap_or(target_tmp)
        .join("console-screenshots")
}

/// Polls chromedriver's `/status` until it says it is ready; fails with its log if it exits or
/// does not answer within [`WAIT`].
async fn wait_until_driver_answers(chromedriver: &mut DriverProcess, port: u16, log: &Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        if driver_is_ready(port).await {
            return;
        }
        let child = chromedriver.0.as_mut().expect("chromedriver was started");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{CHROMEDRIVER} --port={port} exited with {status} before answering; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{CHROMEDRIVER} did not answer on port {port} within {} s; its log:\n{}",
                WAIT.as_secs(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether chromedriver answers `GET /status` with `"ready": true` within 2 s. chromedriver
/// keeps the connection open whatever the request asks, so the answer is read until it holds
/// the mark, not until the connection closes.
async fn driver_is_ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let read_until_ready = async {
        let mut response = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => response.extend_from_slice(&chunk[..read]),
            }
            let text = String::from_utf8_lossy(&response).replace(' ', "");
            if text.contains("\"ready\":true") {
                return true;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), read_until_ready)
        .await
        .unwrap_or(false)
}
