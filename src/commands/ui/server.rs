//! The UI's HTTP server: hyper's HTTP/1 on a current-thread tokio runtime, as the embedded
//! tracking endpoint serves (both are in the tree already). Requests are answered one at a
//! time from the shared index: answers take milliseconds, and a local UI has one reader.

use std::net::TcpListener;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use super::{App, UiError, routes};

/// Accept connections until the process ends.
pub(crate) fn serve(listener: TcpListener, app: App) -> Result<(), UiError> {
    listener.set_nonblocking(true).map_err(UiError::Runtime)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map_err(UiError::Runtime)?;
    let app = Arc::new(app);
    let served: Result<(), UiError> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(UiError::Runtime)?;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: try again in a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&app, &req)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    served
}

fn answer(app: &App, req: &hyper::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let uri = req.uri();
    let reply = routes::respond(app, req.method(), uri.path(), uri.query().unwrap_or(""), req.headers());
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    let body = if req.method() == hyper::Method::HEAD { Bytes::new() } else { Bytes::from(reply.body) };
    response.body(Full::new(body)).expect("a response of valid parts")
}
