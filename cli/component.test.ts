import http from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Registry, register as globalRegistry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { defaultClientMetrics } from "../client/metrics.ts";
import { scrape, serveHealth } from "./component.ts";

const log = newLogger("component-test");
log.level = "silent";

const globalNames = ["kubelab_component_test_global_total", "kubelab_component_test_shared_total"];
afterEach(() => globalNames.forEach((n) => globalRegistry.removeSingleMetric(n)));

describe("/metrics of a component", () => {
  it("serves the component's registry, the client metrics and the global registry, each family once", async () => {
    const own = new Registry();
    new Counter({ name: "kubelab_component_test_own_total", help: "own", registers: [own] }).inc(2);
    new Counter({ name: "kubelab_component_test_shared_total", help: "the component's", registers: [own] }).inc(5);
    new Counter({ name: "kubelab_component_test_global_total", help: "global" }).inc(3); // no registers: the global registry
    new Counter({ name: "kubelab_component_test_shared_total", help: "the global one", registers: [globalRegistry] }).inc(7);
    defaultClientMetrics().leaderOn("kubelab-component-test");

    const server = await serveHealth(0, own, () => true, log, "not ready");
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: "/metrics", agent: false }, (res) => {
          let b = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (b += d));
          res.on("end", () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`status ${res.statusCode}`))));
        }).on("error", reject);
      });
      expect(body).toContain("kubelab_component_test_own_total 2");
      expect(body).toContain("kubelab_component_test_global_total 3");
      expect(body).toContain('leader_election_master_status{name="kubelab-component-test"} 1');
      expect(body).toContain("# TYPE rest_client_requests_total counter");
      // The component's own family wins; the global one of the same name is left out.
      expect(body.match(/# TYPE kubelab_component_test_shared_total /g)).toHaveLength(1);
      expect(body).toContain("kubelab_component_test_shared_total 5");
      expect(body).not.toContain("kubelab_component_test_shared_total 7");
      expect(await scrape(own)).toBe(body);
    } finally {
      server.close();
    }
  });
});
