//! End-to-end tests of `weft echo`: the real binary on 127.0.0.1, real HTTP/1.1 and h2c clients.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use weft_e2e::http::{Client, Reply, get};
use weft_e2e::{TestEcho, wait_until_async};

const BOTH: [Version; 2] = [Version::HTTP_11, Version::HTTP_2];
/// Bound for a process to exit after SIGTERM; only reached when shutdown hangs.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);

fn assert_echo_reply(reply: &Reply, name: &str) {
    assert_eq!(reply.header("x-echo-name"), Some(name), "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
}

async fn stats(echo: &TestEcho) -> anyhow::Result<u64> {
    let reply = get(echo.addr(), Version::HTTP_11, "/__echo/stats").await?;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()?["count"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no count in {reply:?}"))
}

#[tokio::test]
async fn announces_its_address_first_on_stdout() {
    let echo = TestEcho::start("first-line");
    let lines = echo.process().stdout_lines();
    assert_eq!(lines[0], format!("listening on {}", echo.addr()));
}

#[tokio::test]
async fn http1_reply_describes_the_request() -> anyhow::Result<()> {
    let echo = TestEcho::start("alpha");
    let mut client = Client::connect(echo.addr(), Version::HTTP_11).await?;
    let req = client
        .request(Method::POST, "/orders/7?x=1&y=2")
        .header("X-Multi", "one")
        .header("x-multi", "two")
        .body(Full::new(Bytes::from_static(b"0123456789")))?;
    let reply = client.send(req).await?;

    assert_eq!(reply.status, StatusCode::OK);
    assert_echo_reply(&reply, "alpha");
    let body = reply.json()?;
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/orders/7?x=1&y=2");
    assert_eq!(body["host"], echo.addr().to_string());
    assert_eq!(body["protocol"], "HTTP/1.1");
    assert_eq!(body["headers"]["x-multi"], "one, two");
    assert_eq!(body["body_bytes"], 10);
    assert!(body.get("text").is_none(), "{body}");
    Ok(())
}

#[tokio::test]
async fn http2_prior_knowledge_reply_reports_protocol_and_authority() -> anyhow::Result<()> {
    let echo = TestEcho::start("beta");
    let mut client = Client::connect(echo.addr(), Version::HTTP_2).await?;
    let req = client
        .request(Method::PUT, "/h2?q=1")
        .header("x-trace", "abc")
        .body(Full::new(Bytes::from(vec![7u8; 200_000])))?;
    let reply = client.send(req).await?;

    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::OK);
    assert_echo_reply(&reply, "beta");
    let body = reply.json()?;
    assert_eq!(body["protocol"], "HTTP/2.0");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/h2?q=1");
    assert_eq!(body["host"], echo.addr().to_string());
    assert_eq!(body["headers"]["x-trace"], "abc");
    assert_eq!(body["body_bytes"], 200_000);
    // Several streams on the same connection.
    assert_eq!(client.get("/again").await?.json()?["path"], "/again");
    Ok(())
}

/// Reads one HTTP/1.1 response with a `content-length` body off a raw connection.
async fn read_raw_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<(String, Vec<u8>)> {
    let mut status_line = String::new();
    conn.read_line(&mut status_line).await?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(len) = line.strip_prefix("content-length: ") {
            content_length = len.parse()?;
        }
    }
    let mut body = vec![0; content_length];
    conn.read_exact(&mut body).await?;
    Ok((status_line.trim_end().to_string(), body))
}

#[tokio::test]
async fn raw_http1_keep_alive_and_streamed_request_bodies() -> anyhow::Result<()> {
    let echo = TestEcho::start("raw");
    let mut conn = BufReader::new(TcpStream::connect(echo.addr()).await?);
    conn.get_mut()
        .write_all(
            b"POST /chunked HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n\
              HEAD /head?size=321 HTTP/1.1\r\nHost: shop.example\r\n\r\n\
              GET /last HTTP/1.1\r\nHost: shop.example\r\n\r\n",
        )
        .await?;
    let (status, body) = read_raw_response(&mut conn).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let body: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(body["body_bytes"], 7);
    assert_eq!(body["host"], "shop.example");

    // HEAD: the headers of the 321-byte answer, then no body: the next response follows.
    let mut head = String::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        if line.trim_end().is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-length: 321"), "{head}");
    assert!(head.contains("x-echo-name: raw"), "{head}");

    let (status, body) = read_raw_response(&mut conn).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body)?["path"],
        "/last"
    );
    Ok(())
}

#[tokio::test]
async fn status_query_sets_the_status_and_rejects_invalid_codes() -> anyhow::Result<()> {
    let echo = TestEcho::start("status");
    for version in BOTH {
        let reply = get(echo.addr(), version, "/?status=418").await?;
        assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
        assert_echo_reply(&reply, "status");
        for bad in ["abc", "99", "1000"] {
            let reply = get(echo.addr(), version, &format!("/?status={bad}")).await?;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_echo_reply(&reply, "status");
            assert!(reply.json()?["error"].is_string(), "{reply:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn delay_query_waits_before_answering() -> anyhow::Result<()> {
    let echo = TestEcho::start("delay");
    for version in BOTH {
        let started = Instant::now();
        let reply = get(echo.addr(), version, "/?delay=300ms").await?;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(reply.status, StatusCode::OK);

        let reply = get(echo.addr(), version, "/?delay=5parsecs").await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.json()?["error"].is_string(), "{reply:?}");
    }
    Ok(())
}

#[tokio::test]
async fn size_query_returns_exactly_that_many_bytes() -> anyhow::Result<()> {
    let echo = TestEcho::start("size");
    for version in BOTH {
        for size in [0usize, 5, 1_000_000] {
            let reply = get(echo.addr(), version, &format!("/?size={size}")).await?;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-echo-name"), Some("size"));
            assert_eq!(reply.header("content-type"), Some("text/plain"));
            assert_eq!(reply.body.len(), size);
            assert!(reply.body.iter().all(|&b| b == b'x'));
        }
        let reply = get(echo.addr(), version, "/?size=lots").await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    Ok(())
}

#[tokio::test]
async fn stats_count_the_other_requests() -> anyhow::Result<()> {
    let echo = TestEcho::start("stats");
    assert_eq!(stats(&echo).await?, 0);
    let mut h1 = Client::connect(echo.addr(), Version::HTTP_11).await?;
    let mut h2 = Client::connect(echo.addr(), Version::HTTP_2).await?;
    h1.get("/a").await?;
    h1.get("/b?status=500").await?;
    h2.get("/c?size=10").await?;
    h2.call(Method::HEAD, "/d").await?;
    assert_eq!(stats(&echo).await?, 4);
    assert_eq!(stats(&echo).await?, 4, "stats requests are not counted");

    let reply = get(
        echo.addr(),
        Version::HTTP_2,
        "/__echo/stats?status=503&size=3",
    )
    .await?;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "controls do not apply to /__echo/"
    );
    assert_eq!(reply.json()?["count"], 4);
    let reply = get(echo.addr(), Version::HTTP_11, "/__echo/unknown").await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.json()?["error"].is_string());
    assert_eq!(stats(&echo).await?, 4);
    Ok(())
}

#[tokio::test]
async fn status_flag_sets_every_status_unless_the_query_overrides() -> anyhow::Result<()> {
    let echo = TestEcho::builder("down").status(503).start();
    for version in BOTH {
        let reply = get(echo.addr(), version, "/").await?;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()?["name"], "down");
        let reply = get(echo.addr(), version, "/?status=200").await?;
        assert_eq!(reply.status, StatusCode::OK);
    }
    Ok(())
}

#[tokio::test]
async fn text_flag_adds_the_text_field() -> anyhow::Result<()> {
    let echo = TestEcho::builder("greeter")
        .text("hello from the mesh")
        .start();
    for version in BOTH {
        let body = get(echo.addr(), version, "/").await?.json()?;
        assert_eq!(body["text"], "hello from the mesh");
        assert_eq!(body["name"], "greeter");
    }
    Ok(())
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() -> anyhow::Result<()> {
    let mut echo = TestEcho::start("graceful");
    let mut client = Client::connect(echo.addr(), Version::HTTP_11).await?;
    let slow = tokio::spawn(async move { client.get("/?delay=1s").await });
    wait_until_async(EXIT_DEADLINE, || async {
        stats(&echo).await.is_ok_and(|count| count == 1)
    })
    .await?;

    echo.send_sigterm()?;
    let reply = slow.await??;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()?["name"], "graceful");
    let status = echo.wait_exit_async(EXIT_DEADLINE).await?;
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        echo.process().stderr()
    );
    assert!(
        TcpStream::connect(echo.addr()).await.is_err(),
        "still accepting"
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_with_idle_connections_exits_cleanly() -> anyhow::Result<()> {
    let mut echo = TestEcho::start("idle");
    let mut h1 = Client::connect(echo.addr(), Version::HTTP_11).await?;
    let mut h2 = Client::connect(echo.addr(), Version::HTTP_2).await?;
    h1.get("/").await?;
    h2.get("/").await?;
    echo.send_sigterm()?;
    // Idle connections are closed at once, not waited out: well under the 5 s grace period.
    let status = echo.wait_exit_async(Duration::from_secs(4)).await?;
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        echo.process().stderr()
    );
    Ok(())
}
