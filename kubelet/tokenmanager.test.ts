// The token manager: cache keys, upstream's refresh rule (80% of the TTL or 24 h), keeping a valid
// token when a refresh fails, dropping a deleted pod's tokens, and the TokenRequest on the wire.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { FakeClient, FakeClock, RestClient } from "../client/index.ts";
import { clientTokenRequester, GC_PERIOD_MS, TokenManager, type TokenRequest } from "./tokenmanager.ts";

const S = 1000;

/** A TokenRequest API that issues tok-1, tok-2, ... valid for the requested seconds from the fake clock. */
function fakeAPI(clock: FakeClock) {
  const calls: { namespace: string; name: string; request: TokenRequest }[] = [];
  let fail: Error | undefined;
  const requester = async (namespace: string, name: string, request: TokenRequest): Promise<TokenRequest> => {
    calls.push({ namespace, name, request: structuredClone(request) });
    if (fail) throw fail;
    const seconds = request.spec.expirationSeconds ?? 3600;
    return {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { ...request.spec, expirationSeconds: seconds },
      status: { token: `tok-${calls.length}`, expirationTimestamp: new Date(clock.now() + seconds * S).toISOString() },
    };
  };
  return { calls, requester, failWith: (e: Error | undefined) => void (fail = e) };
}

const request = (uid = "uid-1", expirationSeconds = 3600, audiences?: string[]): TokenRequest => ({
  spec: { ...(audiences ? { audiences } : {}), expirationSeconds, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "p", uid } },
});

function setup() {
  const clock = new FakeClock();
  const api = fakeAPI(clock);
  const tm = new TokenManager(api.requester, { clock, random: () => 0 });
  const token = async (tr = request()): Promise<string> => (await tm.getServiceAccountToken("default", "default", tr)).status?.token ?? "";
  return { clock, api, tm, token };
}

describe("TokenManager", () => {
  it("requests a pod-bound token once and serves it from the cache", async () => {
    const { api, token } = setup();
    expect(await token()).toBe("tok-1");
    expect(await token()).toBe("tok-1");
    expect(api.calls).toHaveLength(1);
    expect(api.calls[0]).toEqual({ namespace: "default", name: "default", request: request() });
  });

  it("refreshes once the token is older than 80% of its TTL, not before", async () => {
    const { clock, api, token } = setup();
    expect(await token()).toBe("tok-1");
    await clock.advance(2880 * S); // exactly 80% of 3600 s: not yet (upstream's now.After)
    expect(await token()).toBe("tok-1");
    await clock.advance(1 * S);
    expect(await token()).toBe("tok-2");
    expect(api.calls).toHaveLength(2);
    // The new token's clock starts again.
    await clock.advance(2880 * S);
    expect(await token()).toBe("tok-2");
  });

  it("jitter brings the refresh forward by up to 10 s", async () => {
    const clock = new FakeClock();
    const api = fakeAPI(clock);
    const tm = new TokenManager(api.requester, { clock, random: () => 0.99 }); // 9 s
    await tm.getServiceAccountToken("default", "default", request());
    await clock.advance((2880 - 9) * S + 1);
    expect((await tm.getServiceAccountToken("default", "default", request())).status?.token).toBe("tok-2");
  });

  it("refreshes a long-lived token after 24 hours", async () => {
    const { clock, api, token } = setup();
    const year = 365 * 24 * 3600;
    expect(await token(request("uid-1", year))).toBe("tok-1");
    await clock.advance(24 * 3600 * S);
    expect(await token(request("uid-1", year))).toBe("tok-1");
    await clock.advance(1 * S);
    expect(await token(request("uid-1", year))).toBe("tok-2");
    expect(api.calls).toHaveLength(2);
  });

  it("refreshes when the clock went back before the token was issued", async () => {
    let now = Date.UTC(2024, 0, 1);
    const api = fakeAPI(new FakeClock(now));
    const tm = new TokenManager(api.requester, { clock: { now: () => now }, random: () => 0 });
    expect((await tm.getServiceAccountToken("default", "default", request())).status?.token).toBe("tok-1");
    now -= 60 * S;
    expect((await tm.getServiceAccountToken("default", "default", request())).status?.token).toBe("tok-2");
  });

  it("keeps the cached token while it is valid when a refresh fails; fails once it expired", async () => {
    const { clock, api, token } = setup();
    expect(await token()).toBe("tok-1");
    await clock.advance(3000 * S);
    api.failWith(new Error('serviceaccounts "default" is forbidden'));
    expect(await token()).toBe("tok-1");
    await clock.advance(590 * S);
    expect(await token()).toBe("tok-1");
    // Expired, and less than a gcPeriod since the last cleanup: still cached, but no longer served.
    await clock.advance(11 * S);
    await expect(token()).rejects.toThrow(/^token .* expired and refresh failed: serviceaccounts "default" is forbidden$/);
    api.failWith(undefined);
    expect(await token()).toBe(`tok-${api.calls.length}`);
  });

  it("a token that cannot be fetched at all is 'failed to fetch token', and the next call asks again", async () => {
    const { api, token } = setup();
    api.failWith(new Error('serviceaccounts "default" not found'));
    await expect(token()).rejects.toThrow('failed to fetch token: serviceaccounts "default" not found');
    api.failWith(undefined);
    expect(await token()).toBe("tok-2");
  });

  it("an answer without a token is an error, not a cached empty token", async () => {
    const tm = new TokenManager(async (_ns, _n, tr) => ({ spec: tr.spec }), { clock: new FakeClock() });
    await expect(tm.getServiceAccountToken("default", "default", request())).rejects.toThrow("failed to fetch token: the TokenRequest answer has no token");
    expect(tm.size()).toBe(0);
  });

  it("keys tokens by bound pod uid, audiences and expiration", async () => {
    const { api, token } = setup();
    const tokens = [await token(request("a")), await token(request("b")), await token(request("a", 3600, ["vault"])), await token(request("a", 7200))];
    expect(tokens).toEqual(["tok-1", "tok-2", "tok-3", "tok-4"]);
    expect(await token(request("a"))).toBe("tok-1");
    expect(api.calls).toHaveLength(4);
  });

  it("drops a deleted pod's tokens and only those", async () => {
    const { tm, token } = setup();
    await token(request("a"));
    await token(request("a", 3600, ["vault"]));
    await token(request("b"));
    expect(tm.size()).toBe(3);
    tm.deleteServiceAccountToken("a");
    expect(tm.size()).toBe(1);
    expect(await token(request("b"))).toBe("tok-3");
    expect(await token(request("a"))).toBe("tok-4");
  });

  it("drops expired tokens once a gcPeriod has passed", async () => {
    const { clock, tm, token } = setup();
    await token(request("a", 600));
    await token(request("b", 7200));
    await clock.advance(601 * S);
    expect(tm.size()).toBe(2);
    await clock.advance(GC_PERIOD_MS);
    await token(request("b", 7200));
    expect(tm.size()).toBe(1);
  });

  it("concurrent requests for one key share one TokenRequest", async () => {
    const { api, tm } = setup();
    const rs = await Promise.all([1, 2, 3].map(() => tm.getServiceAccountToken("default", "default", request())));
    expect(rs.map((r) => r.status?.token)).toEqual(["tok-1", "tok-1", "tok-1"]);
    expect(api.calls).toHaveLength(1);
  });
});

describe("clientTokenRequester", () => {
  it("uses the client's createToken when it has one", async () => {
    const client = Object.assign(new FakeClient(), {
      createToken: async (ns: string, name: string, tr: TokenRequest): Promise<TokenRequest> => ({ ...tr, status: { token: `${ns}/${name}`, expirationTimestamp: "2030-01-01T00:00:00Z" } }),
    });
    expect((await clientTokenRequester(client)("ns", "sa", request())).status?.token).toBe("ns/sa");
  });

  it("a client without a TokenRequest call rejects every request (FailedMount, not a crash)", async () => {
    await expect(clientTokenRequester(new FakeClient())("default", "default", request())).rejects.toThrow("cannot create service account tokens");
  });

  it("a RestClient POSTs an authentication.k8s.io/v1 TokenRequest to serviceaccounts/<name>/token", async () => {
    const seen: { method?: string; url?: string; body?: unknown }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const parsed = JSON.parse(body) as TokenRequest;
        seen.push({ method: req.method, url: req.url, body: parsed });
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ ...parsed, status: { token: "jwt", expirationTimestamp: "2030-01-01T00:00:00Z" } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const rc = new RestClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    try {
      const tr = await clientTokenRequester(rc)("team-a", "builder", request("uid-9", 3607));
      expect(tr.status?.token).toBe("jwt");
      expect(seen).toEqual([
        {
          method: "POST",
          url: "/api/v1/namespaces/team-a/serviceaccounts/builder/token",
          body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "p", uid: "uid-9" } } },
        },
      ]);
    } finally {
      rc.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
