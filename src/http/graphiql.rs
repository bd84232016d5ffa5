//! GraphiQL at `GET /graphql` for a browser, with its scripts and styles served from
//! the binary (`assets/graphiql/`, the npm packages' builds) under `/graphiql/…`: a
//! playground that needs a CDN shows "Loading…" forever on a network without the
//! internet. Queries and mutations go over HTTP and subscriptions over
//! `graphql-transport-ws`, both with the headers of GraphiQL's headers tab (where a
//! token goes: `{"Authorization": "Bearer …"}`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>exechub · GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    const url = new URL("/graphql", location.href).href;
    const subscriptionUrl = url.replace(/^http/, "ws");
    // The headers tab's headers go with every request, and as the connection
    // parameters of a subscription's socket.
    const fetcher = (params, options) =>
      GraphiQL.createFetcher({ url, subscriptionUrl, wsConnectionParams: options && options.headers })(params, options);
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {
        fetcher,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
        defaultHeaders: '{\n  "Authorization": "Bearer <token from: exechub token --role admin>"\n}',
      }),
    );
  </script>
</body>
</html>
"#;

/// The files GraphiQL loads: name, media type, content.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "graphiql.min.js",
        "text/javascript",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
];

pub fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /graphiql/{file}`: one of GraphiQL's files, cached for a day (they change
/// only with the binary).
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, media, content)) => (
            [
                (header::CONTENT_TYPE, *media),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *content,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
