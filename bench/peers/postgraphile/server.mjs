// The reference for `bench queries`: PostGraphile (v4) with the connection-filter
// plugin, serving the same Postgres tables read-only.
// Usage: node server.mjs <database-url> <port>
import http from "node:http";
import { postgraphile } from "postgraphile";
import ConnectionFilterPlugin from "postgraphile-plugin-connection-filter";

const [databaseUrl, port] = process.argv.slice(2);
const middleware = postgraphile(databaseUrl, "public", {
  appendPlugins: [ConnectionFilterPlugin],
  disableDefaultMutations: true,
  dynamicJson: true,
  retryOnInitFail: false,
});
http.createServer(middleware).listen(Number(port), "127.0.0.1");
