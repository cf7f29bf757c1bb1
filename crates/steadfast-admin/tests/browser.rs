//! The web UI in a real headless Chromium (Debian's `chromium`; `.ci/run`
//! installs it, `STEADFAST_CHROMIUM` names another binary): the list shows
//! the runs of the file, clicking one opens its page with the history, a
//! run's page lists its pending updates, the pause and unpause buttons
//! pause a run (shown paused, with its reason) and unpause it, the signal
//! form completes a waiting run and the page follows it live, a
//! token-guarded endpoint refuses the page's requests until the token is
//! entered; on the `admin` example, the reset button (once confirmed)
//! starts a new run that the page then shows, of a running and of a
//! closed run, and the schedules page shows
//! the demo schedule's next actions, triggers an action whose run it links,
//! pauses, unpauses and deletes the schedule; and the pages log no console
//! errors.
//!
//! `STEADFAST_SCREENSHOTS=DIR` also saves the list, a run page, a parked
//! run and a schedule as PNGs (the README's screenshots).

mod support;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};
use steadfast::WorkflowOptions;
use steadfast_admin::{AdminAddress, AdminEndpoint, AdminServer};
use support::*;

fn chromium() -> PathBuf {
    let path = std::env::var_os("STEADFAST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "the browser tests need Chromium at {}: install Debian's package (apt install chromium), \
         or set STEADFAST_CHROMIUM to a Chromium binary",
        path.display()
    );
    path
}

fn browser() -> Browser {
    let args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(chromium()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(args.iter().map(OsStr::new).collect())
        .build()
        .expect("launch options");
    Browser::new(options).expect("Chromium starts")
}

/// What the page logged as errors: console errors, uncaught exceptions,
/// and failed loads.
fn console_errors(tab: &Tab) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    tab.enable_log().expect("log domain");
    tab.enable_runtime().expect("runtime domain");
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let line = match event {
            Event::LogEntryAdded(e) => {
                let entry = &e.params.entry;
                (format!("{:?}", entry.level) == "Error").then(|| format!("log: {}", entry.text))
            }
            Event::RuntimeConsoleAPICalled(e) => (format!("{:?}", e.params.Type) == "Error")
                .then(|| format!("console.error: {:?}", e.params.args)),
            Event::RuntimeExceptionThrown(e) => {
                Some(format!("exception: {:?}", e.params.exception_details))
            }
            _ => None,
        };
        if let Some(line) = line {
            sink.lock().unwrap().push(line);
        }
    }))
    .expect("listener");
    errors
}

fn text(tab: &Tab) -> String {
    tab.evaluate("document.body.innerText", false)
        .expect("evaluate")
        .value
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn screenshot(tab: &Tab, name: &str) {
    let Some(dir) = std::env::var_os("STEADFAST_SCREENSHOTS") else {
        return;
    };
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    std::fs::write(PathBuf::from(dir).join(name), png).expect("write the screenshot");
}

fn address(server: &AdminServer) -> SocketAddr {
    match server.address() {
        AdminAddress::Tcp(a) => *a,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_a_run_page_and_the_signal_form_work_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let done = engine
        .start_workflow(GREETER, "done-1", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("done-1", NAME, "Bo".into()).await.unwrap();
    done.result().await.unwrap();
    let waiting = engine
        .start_workflow(GREETER, "greet-1", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    // A run with an update in flight: its handler waits for `release`.
    engine
        .start_workflow(GREETER, "held-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let caller = engine.clone();
    let held = tokio::spawn(async move { caller.update("held-1", HOLD, ()).await });
    // Markup in an ID is shown as text, never run.
    engine
        .start_workflow(
            GREETER,
            "<img src=x id=injected>",
            "Hi".into(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .serve()
        .await
        .unwrap();
    let url = format!("http://{}/", address(&server));

    let (errors, page_text) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().expect("a tab");
        let errors = console_errors(&tab);
        tab.navigate_to(&url).expect("navigate");
        tab.wait_for_element("#run-list").expect("the run list");
        let list = text(&tab);
        for id in ["done-1", "greet-1", "<img src=x id=injected>"] {
            assert!(list.contains(id), "{id} missing from the list: {list}");
        }
        assert!(
            tab.find_element("#injected").is_err(),
            "markup in an ID ran"
        );
        screenshot(&tab, "ui-list.png");
        // The counts of the whole file, each a link to its status.
        let count = |status: &str| {
            tab.wait_for_element(&format!("#counts a[data-status='{status}'] .n"))
                .and_then(|e| e.get_inner_text())
                .unwrap_or_else(|e| panic!("no {status} count: {e}"))
        };
        assert_eq!(count("Running"), "3");
        assert_eq!(count("Completed"), "1");
        assert_eq!(count("all"), "4");
        let counts = tab
            .wait_for_element("#counts")
            .and_then(|e| e.get_inner_text())
            .unwrap();
        assert!(!counts.contains("null"), "{counts}");
        // A close-time range far in the past matches no run.
        tab.navigate_to(&format!("{url}#/?closed_before=2000-01-01T00:00:00.000Z"))
            .expect("navigate");
        tab.wait_for_element("#no-runs")
            .expect("no run closed before 2000");

        // The pending update, on its run's page.
        tab.navigate_to(&format!("{url}#/workflows/held-1"))
            .expect("navigate");
        expect_element(&tab, "#pending-updates", &errors);
        let updates = tab
            .wait_for_element("#pending-updates")
            .and_then(|e| e.get_inner_text())
            .unwrap();
        assert!(updates.contains("hold"), "{updates}");

        // Filter by status.
        tab.navigate_to(&format!("{url}#/?status=Completed"))
            .expect("navigate");
        tab.wait_for_element("#filter-status").unwrap();
        let filtered = wait_for_text(&tab, |t| !t.contains("greet-1"));
        assert!(filtered.contains("done-1"), "{filtered}");

        // Click a run: its page, with the history and the actions.
        tab.navigate_to(&url).expect("navigate");
        tab.wait_for_element("tr[data-workflow-id='greet-1'] a.run-link")
            .unwrap()
            .click()
            .unwrap();
        expect_element(&tab, "#events", &errors);
        expect_element(&tab, "#timeline", &errors);
        let page = text(&tab);
        assert!(page.contains("WorkflowStarted"), "{page}");
        assert!(
            !page.contains("Invalid Date"),
            "an event time unread: {page}"
        );
        assert!(page.contains("Send signal"), "{page}");

        // Pause: the page shows the run paused, with its reason; unpause.
        tab.wait_for_element("#pause-reason")
            .unwrap()
            .type_into("looking at it")
            .unwrap();
        tab.wait_for_element("#pause").unwrap().click().unwrap();
        tab.wait_for_element_with_custom_timeout("h1 .badge.Paused", Duration::from_secs(20))
            .expect("the page shows the run paused");
        let page = wait_for_text(&tab, |t| t.contains("Paused: looking at it"));
        assert!(page.contains("Unpause"), "{page}");
        tab.wait_for_element_with_custom_timeout("#unpause", Duration::from_secs(20))
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element_with_custom_timeout("#pause", Duration::from_secs(20))
            .expect("the run is unpaused");
        let page = wait_for_text(&tab, |t| !t.contains("Paused: looking at it"));
        assert!(page.contains("WorkflowUnpaused"), "{page}");

        // The signal form: the run completes, and the open page follows it.
        tab.wait_for_element("#signal-name")
            .unwrap()
            .type_into("name")
            .unwrap();
        tab.wait_for_element("#signal-input")
            .unwrap()
            .type_into("\"Ada\"")
            .unwrap();
        tab.wait_for_element("#signal-send")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element_with_custom_timeout("h1 .badge.Completed", Duration::from_secs(20))
            .expect("the page shows the run completed");
        let page = wait_for_text(&tab, |t| t.contains("WorkflowCompleted"));
        assert!(page.contains("Hello, Ada!"), "{page}");
        screenshot(&tab, "ui-run.png");
        let errors = errors.lock().unwrap().clone();
        (errors, page)
    })
    .await
    .unwrap();
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
    assert!(page_text.contains("Result"));
    assert_eq!(waiting.result().await.unwrap(), "Hello, Ada!");
    engine.signal("held-1", RELEASE, 1).await.unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 1);
    let kinds: Vec<String> = engine
        .history("greet-1")
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{:?}", e.kind))
        .collect();
    assert!(
        kinds.iter().any(|k| k.contains("looking at it")),
        "the pause's reason is in the history: {kinds:?}"
    );
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

/// Waits for `selector`; on failure says what the page showed and logged.
fn expect_element(tab: &Tab, selector: &str, errors: &Arc<Mutex<Vec<String>>>) {
    if let Err(e) = tab.wait_for_element(selector) {
        panic!(
            "{selector} never appeared ({e}); the page shows {:?} and logged {:?}",
            text(tab),
            errors.lock().unwrap()
        );
    }
}

/// Waits (up to 20 s) until the page's text satisfies `check`.
fn wait_for_text(tab: &Tab, check: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let t = text(tab);
        if check(&t) {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed it: {t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_endpoint_refuses_the_page_until_the_token_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .start_workflow(GREETER, "secret-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let token = "a-token-of-thirty-two-characters";
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .token(token)
        .serve()
        .await
        .unwrap();
    let url = format!("http://{}/", address(&server));
    tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().expect("a tab");
        tab.navigate_to(&url).expect("navigate");
        tab.wait_for_element("#token-form")
            .expect("the page asks for the token");
        let page = text(&tab);
        assert!(page.contains("needs a token"), "{page}");
        assert!(
            !page.contains("secret-1"),
            "data shown without the token: {page}"
        );
        // The API itself refuses a request without it.
        let status = tab
            .evaluate("fetch('/api/v1/workflows').then(r => r.status)", true)
            .unwrap()
            .value
            .unwrap();
        assert_eq!(status, 401);

        tab.wait_for_element("#token")
            .unwrap()
            .type_into(token)
            .unwrap();
        tab.press_key("Enter").unwrap();
        tab.wait_for_element("#run-list")
            .expect("the list, with the token");
        assert!(text(&tab).contains("secret-1"));
    })
    .await
    .unwrap();
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

/// The built `examples/admin.rs` of this crate (`cargo test` builds the
/// examples beside the test binaries).
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test` (which builds the examples)",
        path.display()
    );
    path
}

/// Kills the example when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `admin` example running on a fresh file, and the address it printed.
struct Example {
    url: String,
    _child: KillOnDrop,
    _dir: tempfile::TempDir,
}

async fn admin_example() -> Example {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.steadfast");
    let mut child = std::process::Command::new(example_binary("admin"))
        .arg("--db")
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().expect("its stdout");
    let child = KillOnDrop(child);
    let url = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("the example printed its address")
                .expect("a line");
            if let Some(url) = line.strip_prefix("Admin UI: ") {
                return url.to_string();
            }
        }
    })
    .await
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // `cargo test --test browser` alone does not rebuild the examples: an
    // example built before the page changed would test the old page.
    let address: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the printed address");
    for (path, source) in [
        ("/", include_str!("../ui/index.html")),
        ("/ui/app.js", include_str!("../ui/app.js")),
        ("/ui/style.css", include_str!("../ui/style.css")),
    ] {
        let served = call(address, "GET", path, None, None).await;
        assert!(
            served.body == source.as_bytes(),
            "the admin example serves another {path} than ui/ has: it is stale; \
             run `cargo build -p steadfast-admin --examples` (or the whole `cargo test`)"
        );
    }
    Example {
        url,
        _child: child,
        _dir: dir,
    }
}

/// The text of the element `selector`, once it exists.
fn inner_text(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector)
        .and_then(|e| e.get_inner_text())
        .unwrap_or_else(|e| panic!("{selector}: {e}; the page shows {:?}", text(tab)))
}

/// What a script evaluates to, as text.
fn evaluate(tab: &Tab, script: &str) -> String {
    let value = tab
        .evaluate(script, true)
        .expect("evaluate")
        .value
        .unwrap_or_default();
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_example_lists_its_five_demo_runs_and_shows_the_parked_diff() {
    let example = admin_example().await;
    let url = example.url.clone();

    let errors = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().expect("a tab");
        let errors = console_errors(&tab);
        tab.navigate_to(&url).expect("navigate");
        expect_element(&tab, "#run-list", &errors);
        let demos = [
            "demo-running",
            "demo-waiting",
            "demo-completed",
            "demo-failed",
            "demo-parked",
        ];
        let list = wait_for_text(&tab, |t| demos.iter().all(|id| t.contains(id)));
        assert!(list.contains("Running · parked"), "{list}");
        tab.wait_for_element("tr[data-workflow-id='demo-parked'] .badge.Parked")
            .expect("the parked run's badge");
        tab.wait_for_element("#counts a[data-status='parked']")
            .expect("the parked count");

        // The parked run's page: the diff between its history and the code.
        tab.wait_for_element("tr[data-workflow-id='demo-parked'] a.run-link")
            .unwrap()
            .click()
            .unwrap();
        expect_element(&tab, "#nondeterminism", &errors);
        let history_side = tab
            .wait_for_element("#nondeterminism .history-side")
            .and_then(|e| e.get_inner_text())
            .unwrap();
        let code_side = tab
            .wait_for_element("#nondeterminism .code-side")
            .and_then(|e| e.get_inner_text())
            .unwrap();
        assert!(history_side.contains("Timer"), "{history_side}");
        assert!(code_side.contains("slow_step"), "{code_side}");
        screenshot(&tab, "ui-parked.png");
        errors.lock().unwrap().clone()
    })
    .await
    .unwrap();
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_button_asks_then_starts_a_new_run_that_the_page_shows() {
    let example = admin_example().await;
    let url = example.url.clone();
    let errors = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().expect("a tab");
        let errors = console_errors(&tab);
        tab.navigate_to(&format!("{url}#/workflows/demo-waiting"))
            .expect("navigate");
        expect_element(&tab, "#events", &errors);
        let old_run = inner_text(&tab, "#summary dd.mono");
        tab.wait_for_element("#reset-reason")
            .unwrap()
            .type_into("the approval step changed")
            .unwrap();
        tab.wait_for_element("#reset").unwrap().click().unwrap();
        // Nothing happens before the confirmation.
        let asked = inner_text(&tab, "#reset-confirmation");
        assert!(asked.contains("last workflow task"), "{asked}");
        assert!(tab.find_element("#reset-from").is_err());
        tab.wait_for_element("#reset-confirm")
            .unwrap()
            .click()
            .unwrap();
        let new_run = tab
            .wait_for_element_with_custom_timeout("#reset-new-run", Duration::from_secs(20))
            .and_then(|e| e.get_inner_text())
            .expect("the notice names the new run");
        assert_ne!(new_run, old_run);
        // The page follows the workflow's latest run: the new one, linked
        // back to the run it was reset from.
        tab.wait_for_element_with_custom_timeout("#reset-from", Duration::from_secs(20))
            .expect("the new run's page");
        assert_eq!(inner_text(&tab, "#reset-from"), old_run);
        assert_eq!(inner_text(&tab, "#summary dd.mono"), new_run);
        assert!(inner_text(&tab, "h1").contains("Running"));
        // The old run: terminated by the reset, linked to the new one.
        tab.wait_for_element("#reset-from a")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element_with_custom_timeout("h1 .badge.Terminated", Duration::from_secs(20))
            .expect("the old run is terminated");
        assert_eq!(inner_text(&tab, "#reset-to"), new_run);

        // A closed run can be reset too (and has no other action): it stays
        // closed, and the page follows the new run, which completes.
        tab.navigate_to(&format!("{url}#/workflows/demo-completed"))
            .expect("navigate");
        tab.wait_for_element_with_custom_timeout("h1 .badge.Completed", Duration::from_secs(20))
            .expect("demo-completed is completed");
        expect_element(&tab, "#reset", &errors);
        assert!(tab.find_element("#signal-send").is_err());
        let closed_run = inner_text(&tab, "#summary dd.mono");
        tab.wait_for_element("#reset-reason")
            .unwrap()
            .type_into("run it again")
            .unwrap();
        tab.wait_for_element("#reset").unwrap().click().unwrap();
        assert!(inner_text(&tab, "#reset-confirmation").contains("closed run"));
        tab.wait_for_element("#reset-confirm")
            .unwrap()
            .click()
            .unwrap();
        let rerun = tab
            .wait_for_element_with_custom_timeout("#reset-new-run", Duration::from_secs(20))
            .and_then(|e| e.get_inner_text())
            .expect("the notice names the new run");
        tab.wait_for_element_with_custom_timeout("#reset-from", Duration::from_secs(20))
            .expect("the new run's page");
        assert_eq!(inner_text(&tab, "#reset-from"), closed_run);
        assert_eq!(inner_text(&tab, "#summary dd.mono"), rerun);
        tab.wait_for_element_with_custom_timeout("h1 .badge.Completed", Duration::from_secs(20))
            .expect("the new run completes");
        errors.lock().unwrap().clone()
    })
    .await
    .unwrap();
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_page_shows_next_actions_and_triggers_one_whose_run_it_links() {
    let example = admin_example().await;
    let url = example.url.clone();
    let errors = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().expect("a tab");
        let errors = console_errors(&tab);
        tab.navigate_to(&url).expect("navigate");
        expect_element(&tab, "#run-list", &errors);
        tab.wait_for_element("#nav-schedules")
            .unwrap()
            .click()
            .unwrap();
        expect_element(&tab, "tr[data-schedule-id='demo-hourly']", &errors);
        // The next action time the API gives, as the page writes times.
        let next = evaluate(
            &tab,
            "fetch('/api/v1/schedules/demo-hourly').then(r => r.json())\
             .then(s => new Date(s.info.next_action_times[0]).toLocaleString())",
        );
        let row = inner_text(&tab, "tr[data-schedule-id='demo-hourly']");
        assert!(row.contains(&next), "{next:?} not in {row}");
        assert!(row.contains("Active") && row.contains("Demo"), "{row}");

        tab.wait_for_element("tr[data-schedule-id='demo-hourly'] a.schedule-link")
            .unwrap()
            .click()
            .unwrap();
        expect_element(&tab, "#next-actions li", &errors);
        assert!(inner_text(&tab, "#next-actions").contains(&next));
        assert_eq!(inner_text(&tab, "#schedule-overlap"), "skip");
        assert_eq!(inner_text(&tab, "#schedule-pause-on-failure"), "no");
        assert!(inner_text(&tab, "#schedule-spec").contains("1h"));
        let actions_before = tab
            .find_elements("#recent-actions tbody tr")
            .map(|rows| rows.len())
            .unwrap_or(0);

        // Trigger: a new recent action, linked to the run it started.
        tab.wait_for_element("#trigger").unwrap().click().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while tab
            .find_elements("#recent-actions tbody tr")
            .map(|rows| rows.len())
            .unwrap_or(0)
            <= actions_before
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no new recent action: {}",
                text(&tab)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(inner_text(&tab, "#schedule-state").contains("Actions taken"));
        screenshot(&tab, "ui-schedule.png");

        // Pause with a note, then unpause.
        tab.wait_for_element("#schedule-note")
            .unwrap()
            .type_into("holiday freeze")
            .unwrap();
        tab.wait_for_element("#schedule-pause")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element_with_custom_timeout("h1 .badge.Paused", Duration::from_secs(20))
            .expect("the schedule shows paused");
        assert!(inner_text(&tab, "#schedule-state").contains("holiday freeze"));
        tab.wait_for_element_with_custom_timeout("#schedule-unpause", Duration::from_secs(20))
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element_with_custom_timeout("h1 .badge.Active", Duration::from_secs(20))
            .expect("the schedule shows active again");

        // The newest action's link opens its run's page.
        let link = tab
            .wait_for_element("#recent-actions tbody tr:first-child a.run-link")
            .unwrap();
        let workflow_id = link.get_inner_text().unwrap();
        assert!(workflow_id.starts_with("demo-hourly-"), "{workflow_id}");
        link.click().unwrap();
        expect_element(&tab, "#events", &errors);
        assert!(inner_text(&tab, "h1").contains(&workflow_id));
        tab.wait_for_element_with_custom_timeout("h1 .badge.Completed", Duration::from_secs(20))
            .expect("the scheduled run completes");
        // It links back to its schedule.
        assert_eq!(inner_text(&tab, "#scheduled-by a"), "demo-hourly");

        // Delete, once confirmed: the list has no schedule left.
        tab.navigate_to(&format!("{url}#/schedules/demo-hourly"))
            .expect("navigate");
        tab.wait_for_element("#schedule-delete")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element("#schedule-delete-confirm")
            .unwrap()
            .click()
            .unwrap();
        expect_element(&tab, "#no-schedules", &errors);
        errors.lock().unwrap().clone()
    })
    .await
    .unwrap();
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
}
