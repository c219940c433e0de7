//! `lockstep ui` over HTTP: the token, paths that try to leave the store, the types files are
//! served with, reads while runs write; and `lockstep plot`. The runs log through the
//! embedded endpoint with plain HTTP (no mlflow client), which keeps these tests fast.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::ui::UiServer;
use crate::support::*;

/// A script that logs through the run's endpoint as the mlflow client would: `loss` and
/// `acc` curves of `steps` points (in batches), `alpha` as a param, and files into the run's
/// artifact directory. With a gate file named, it prints a tick a tenth of a second until the
/// file exists.
pub const TRAIN: &str = r#"
import json, os, sys, time, urllib.request
uri, run = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_RUN_ID"]
alpha, steps, gate = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{uri}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))

info = call(f"runs/get?run_id={run}")["run"]["info"]
call("runs/log-parameter", {"run_id": run, "key": "alpha", "value": str(alpha)})
points = [{"key": "loss", "value": alpha + 1.0 / (s + 1), "timestamp": 1000 + 10 * s, "step": s} for s in range(steps)]
points += [{"key": "acc", "value": 1.0 - 0.5 / (s + 1), "timestamp": 1000 + 10 * s, "step": s} for s in range(steps)]
for i in range(0, len(points), 1000):
    call("runs/log-batch", {"run_id": run, "metrics": points[i:i + 1000]})
call("runs/log-metric", {"run_id": run, "key": "rmse", "value": (alpha - 0.4) ** 2, "timestamp": 5000, "step": 0})
art = info["artifact_uri"].removeprefix("file://")
os.makedirs(os.path.join(art, "plots"), exist_ok=True)
files = {"notes.txt": "hello <b>notes</b>\n", "page.html": "<script>document.title='owned'</script>",
         "plots/curve.svg": "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
         "data.json": "{\"a\": 1}"}
for name, text in files.items():
    with open(os.path.join(art, name), "w") as f:
        f.write(text)
with open(os.path.join(art, "plots/dot.png"), "wb") as f:
    f.write(bytes.fromhex("89504e470d0a1a0a"))
os.symlink("/etc/passwd", os.path.join(art, "passwd"))
with open("result.txt", "w") as f:
    f.write(f"alpha={alpha}\n")
print("trained", alpha, flush=True)
tick = 0
while gate != "-" and not os.path.exists(gate):
    tick += 1
    print("tick", tick, flush=True)
    time.sleep(0.1)
"#;

/// The MLproject of [`TRAIN`] (plus an entry point that fails).
pub const MANIFEST: &str = r#"
name: curves
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      steps: {type: int, default: 50}
      gate: {type: string, default: "-"}
    command: "python3 train.py {alpha} {steps} {gate}"
  broken:
    command: "echo about to fail; echo trouble >&2; exit 3"
"#;

/// A context with the project `p` of [`TRAIN`].
pub fn context() -> TestContext {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN)]);
    ctx
}

fn run_id(ctx: &TestContext) -> String {
    ctx.records().last().unwrap()["run_id"].as_str().unwrap().to_string()
}

#[test]
fn every_page_needs_the_token_which_moves_into_a_cookie() {
    let ctx = context();
    ctx.run(["run", "p", "--isolated"]).success();
    let ui = UiServer::start(&ctx, &ctx.store());
    assert!(ui.url.starts_with("http://127.0.0.1:"), "loopback by default: {}", ui.url);
    for path in ["/", "/static/app.js", &format!("/run/{}", run_id(&ctx)), "/nothing"] {
        let a = ui.request(path, None);
        assert_eq!(a.status, 403, "{path} without the token");
        assert!(a.text().contains("needs the token"), "{}", a.text());
        assert_eq!(ui.request(path, Some("token 0123")).status, 403, "{path} with a wrong token");
    }
    let wrong = ui.request(&format!("/?token={}x", ui.token), None);
    assert_eq!(wrong.status, 403, "a longer token is not the token");
    let first = ui.request(&format!("/?token={}&status=FINISHED", ui.token), None);
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/?status=FINISHED"), "the token leaves the address bar");
    let cookie = first.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut with_cookie =
        agent.get(format!("{}/", ui.base)).header("Cookie", cookie.split(';').next().unwrap()).call().unwrap();
    assert_eq!(with_cookie.status().as_u16(), 200);
    assert!(with_cookie.body_mut().read_to_string().unwrap().contains("<h1>Runs</h1>"));
    let page = ui.get("/");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let posted =
        agent.post(format!("{}/", ui.base)).header("Authorization", format!("token {}", ui.token)).send("").unwrap();
    assert_eq!(posted.status().as_u16(), 405, "the UI only reads");
}

#[test]
fn paths_cannot_leave_the_store_or_the_files_a_record_lists() {
    let ctx = context();
    ctx.run(["run", "p", "--isolated"]).success();
    let id = run_id(&ctx);
    let ui = UiServer::start(&ctx, &ctx.store());
    assert_eq!(ui.get(&format!("/run/{id}/file/artifacts/notes.txt")).status, 200);
    for path in [
        format!("/run/{id}/file/artifacts/%2e%2e/record.json"),
        format!("/run/{id}/file/artifacts/..%2frecord.json"),
        format!("/run/{id}/file/artifacts/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
        format!("/run/{id}/file/artifacts/passwd"),
        format!("/run/{id}/view/artifacts/passwd"),
        format!("/run/{id}/file/outputs/%2e%2e/%2e%2e/record.json"),
        format!("/run/{id}/file/record.json"),
        format!("/run/{id}/file/patch"),
        "/run/..%2f..%2fetc/file/artifacts/passwd".to_string(),
        "/run/%2e%2e/file/artifacts/notes.txt".to_string(),
        "/sweep/..%2f..%2fruns".to_string(),
        format!("/run/{id}/log/..%2frecord.json"),
    ] {
        let a = ui.get(&path);
        assert_eq!(a.status, 404, "{path}: {}", a.text());
        assert!(!a.text().contains("root:") && !a.text().contains("\"schema\""), "{path} leaks: {}", a.text());
    }
}

#[test]
fn files_are_served_with_their_types_and_html_and_svg_in_a_sandbox() {
    let ctx = context();
    ctx.run(["run", "p", "--isolated"]).success();
    let id = run_id(&ctx);
    let ui = UiServer::start(&ctx, &ctx.store());
    for (path, kind) in [
        ("artifacts/notes.txt", "text/plain; charset=utf-8"),
        ("artifacts/page.html", "text/html; charset=utf-8"),
        ("artifacts/plots/curve.svg", "image/svg+xml"),
        ("artifacts/plots/dot.png", "image/png"),
        ("artifacts/data.json", "application/json"),
        ("outputs/result.txt", "text/plain; charset=utf-8"),
    ] {
        let a = ui.get(&format!("/run/{id}/file/{path}"));
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.header("content-type"), Some(kind), "{path}");
        assert_eq!(a.header("content-security-policy"), Some("sandbox"), "{path} runs no script in the app's origin");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    let view = ui.get(&format!("/run/{id}/view/artifacts/notes.txt")).text();
    assert!(view.contains("hello &lt;b&gt;notes&lt;/b&gt;"), "text is shown escaped: {view}");
    let image = ui.get(&format!("/run/{id}/view/artifacts/plots/dot.png")).text();
    assert!(
        image.contains(&format!(r#"<img class="artifact" src="/run/{id}/file/artifacts/plots/dot.png""#)),
        "{image}"
    );
    let log = ui.get(&format!("/run/{id}/log/stdout?offset=0"));
    assert!(log.text().starts_with("trained 0.5"), "{}", log.text());
    assert_eq!(log.header("x-run-live"), Some("0"));
}

#[test]
fn pages_stay_whole_while_runs_write_the_store() {
    let ctx = context();
    ctx.run(["run", "p", "--isolated", "-P", "steps=5"]).success();
    let first = run_id(&ctx);
    let ui = UiServer::start(&ctx, &ctx.store());
    let gate = ctx.work.join("gate");
    let writers: Vec<std::process::Child> = (0..3)
        .map(|i| {
            ctx.lockstep_process()
                .args(["run", "p", "--isolated", "-P", &format!("alpha=0.{i}"), "-P", "steps=3000"])
                .args(["-P", &format!("gate={}", gate.display())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    let mut seen_running = false;
    let run_page = format!("/run/{first}");
    std::thread::scope(|s| {
        let readers: Vec<_> = ["/", run_page.as_str(), "/fragment/runs", "/?sort=-metric:rmse"]
            .into_iter()
            .map(|path| {
                let ui = &ui;
                s.spawn(move || {
                    let mut pages = 0;
                    while started.elapsed() < Duration::from_secs(4) {
                        let a = ui.get(path);
                        assert_eq!(a.status, 200, "{path}: {}", a.text());
                        let text = a.text();
                        assert!(
                            text.trim_end().ends_with("</html>") || text.trim_end().ends_with("</div>"),
                            "{path} whole"
                        );
                        assert!(!text.contains("cannot read"), "never a half-written record: {text}");
                        pages += 1;
                    }
                    pages
                })
            })
            .collect();
        while started.elapsed() < Duration::from_secs(3) {
            seen_running |= ui.get("/?status=RUNNING").text().contains("<p class=\"count\">3 runs</p>");
            std::thread::sleep(Duration::from_millis(100));
        }
        for r in readers {
            assert!(r.join().unwrap() > 3, "pages kept coming");
        }
    });
    fs::write(&gate, "").unwrap();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    assert!(seen_running, "the runs showed as RUNNING while they ran");
    let page = ui.get("/").text();
    assert!(page.contains("<p class=\"count\">4 runs</p>"), "{page}");
    assert_eq!(page.matches(r#"<span class="status FINISHED">"#).count(), 4);
}

#[test]
fn plot_writes_one_chart_as_svg_or_png() {
    let ctx = context();
    ctx.run(["run", "p", "--isolated", "-P", "alpha=0.1"]).success();
    ctx.run(["run", "p", "--isolated", "-P", "alpha=0.9"]).success();
    let ids: Vec<String> = ctx.records().iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect();
    let svg = ctx.work.join("loss.svg");
    ctx.run(["plot", &ids[0], &ids[1], "--metric", "loss", "-o", "loss.svg"])
        .success()
        .stdout(&format!("{}\n", Path::new("loss.svg").display()))
        .stderr_has("100 points of loss");
    let text = fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{text}");
    assert_eq!(text.matches("<polyline class=\"series\"").count(), 2, "a line per run");
    assert!(text.contains(r#"class="axis x""#) && text.contains(r#"class="legend""#));
    ctx.run(["plot", &ids[0], "--metric", "acc", "--x", "time", "-o", "acc.png"]).success();
    let png = fs::read(ctx.work.join("acc.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1280, "drawn at twice 640 pixels");
    ctx.run(["plot", &ids[0], "--metric", "loss", "-o", "loss.jpg"])
        .status(2)
        .stderr_has("error: cannot tell the chart's format from loss.jpg")
        .hint("for example -o loss.svg or -o loss.png");
    ctx.run(["plot", &ids[0], "--metric", "lost", "-o", "x.svg"])
        .status(2)
        .stderr_has(&format!("error: run {} logged no metric 'lost'", ids[0]))
        .hint("it logged: acc, loss, rmse");
    ctx.run(["plot", "ffff", "--metric", "loss", "-o", "x.svg"]).status(2).stderr_has("error: no run 'ffff'");
    assert!(!ctx.work.join("x.svg").exists());
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let ctx = TestContext::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    ctx.run(["ui", "--port", &port])
        .user_error(&format!("cannot listen on 127.0.0.1:{port}"))
        .hint("--port 0 (the default) picks a free port");
}
