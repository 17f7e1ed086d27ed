import { describe, expect, it } from "vitest";
import { labelSelectorAsSelector, parseLabelSelector, selectorFromSet, SelectorError, labelSelectorMatches, formatLabelSelector } from "./labels.ts";

describe("parseLabelSelector matching", () => {
  const cases: { name: string; selector: string; labels: Record<string, string> | undefined; want: boolean }[] = [
    { name: "an equality term matches a label with that value", selector: "app=web", labels: { app: "web" }, want: true },
    { name: "an equality term does not match a different value", selector: "app=web", labels: { app: "db" }, want: false },
    { name: "a double-equals term behaves like equals", selector: "app==web", labels: { app: "web" }, want: true },
    { name: "an inequality term matches when the label is missing", selector: "app!=web", labels: {}, want: true },
    { name: "an inequality term rejects the excluded value", selector: "app!=web", labels: { app: "web" }, want: false },
    { name: "an in term matches any listed value", selector: "tier in (frontend, backend)", labels: { tier: "backend" }, want: true },
    { name: "an in term does not match when the label is missing", selector: "tier in (a)", labels: {}, want: false },
    { name: "a notin term matches when the label is missing", selector: "tier notin (a)", labels: undefined, want: true },
    { name: "a notin term rejects a listed value", selector: "tier notin (a,b)", labels: { tier: "b" }, want: false },
    { name: "an existence term requires the key", selector: "canary", labels: { canary: "" }, want: true },
    { name: "a non-existence term rejects the key", selector: "!canary", labels: { canary: "yes" }, want: false },
    { name: "comma-separated terms are ANDed", selector: "app=web,env!=prod", labels: { app: "web", env: "prod" }, want: false },
    { name: "whitespace around terms is ignored", selector: "  app = web ,  !canary ", labels: { app: "web" }, want: true },
    { name: "the empty selector matches everything", selector: "", labels: { any: "thing" }, want: true },
    { name: "a greater-than term compares integers", selector: "gen>3", labels: { gen: "4" }, want: true },
    { name: "a less-than term fails for non-integer labels", selector: "gen<3", labels: { gen: "x" }, want: false },
    { name: "an empty value after = matches an empty label", selector: "a=", labels: { a: "" }, want: true },
    { name: "in and notin are ordinary keys in key position", selector: "in=x", labels: { in: "x" }, want: true },
    { name: "prefixed keys are accepted", selector: "app.kubernetes.io/name=web", labels: { "app.kubernetes.io/name": "web" }, want: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseLabelSelector(c.selector).matches(c.labels)).toBe(c.want);
    });
  }
});

describe("parseLabelSelector canonical form", () => {
  const cases = [
    { name: "terms are sorted by key", in: "b=1,a=2", want: "a=2,b=1" },
    { name: "in values are sorted and deduplicated", in: "x in (c,a,c)", want: "x in (a,c)" },
    { name: "existence and non-existence print bare", in: "!b,a", want: "a,!b" },
    { name: "operators keep their spelling", in: "a==1,b!=2,c notin (z)", want: "a==1,b!=2,c notin (z)" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseLabelSelector(c.in).toString()).toBe(c.want);
    });
  }

  it("exposes the parsed requirements", () => {
    const reqs = parseLabelSelector("tier in (b,a),!x").requirements();
    expect(reqs.map((r) => [r.key, r.operator, [...r.values]])).toEqual([
      ["tier", "in", ["a", "b"]],
      ["x", "!", []],
    ]);
  });
});

describe("parseLabelSelector errors", () => {
  const cases = [
    { name: "an invalid value names the value path, key and value", in: "tier=a_", want: 'unable to parse requirement: values[0][tier]: Invalid value: "a_": a valid label must be an empty string' },
    { name: "an invalid key is reported as Kubernetes does, with a nil path", in: "-bad=x", want: 'unable to parse requirement: <nil>: Invalid value: "-bad": name part must consist of alphanumeric characters' },
    { name: "a missing operator lists the operators expected", in: "a b", want: "found 'b', expected: in, notin, =, ==, !=, gt, lt" },
    { name: "an unclosed value list is reported", in: "a in (x", want: "found '', expected: ',' or ')'" },
    { name: "a value list must start with a parenthesis", in: "a in x", want: "found 'x' expected: '('" },
    { name: "a trailing comma needs another term", in: "a=b,", want: "found '', expected: identifier after ','" },
    { name: "a stray parenthesis is rejected", in: "(a)", want: "found '(', expected: !, identifier, or 'end of string'" },
    { name: "a term may not continue after a non-existence test", in: "!a=b", want: "found '=', expected: ',' or 'end of string'" },
    { name: "gt requires an integer", in: "a>x", want: "for 'Gt', 'Lt' operators, the value must be an integer" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      let err: unknown;
      try {
        parseLabelSelector(c.in);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SelectorError);
      expect((err as SelectorError).name).toBe("SelectorError");
      expect((err as SelectorError).message).toContain(c.want);
    });
  }
});

describe("labelSelectorAsSelector", () => {
  it("a null selector matches nothing", () => {
    const s = labelSelectorAsSelector(null);
    expect(s.matches({})).toBe(false);
    expect(s.empty()).toBe(false);
  });
  it("an empty selector matches everything", () => {
    const s = labelSelectorAsSelector({});
    expect(s.matches(undefined)).toBe(true);
    expect(s.empty()).toBe(true);
  });
  it("matchLabels and matchExpressions are ANDed", () => {
    const s = labelSelectorAsSelector({
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["a", "b"] },
        { key: "canary", operator: "DoesNotExist" },
      ],
    });
    expect(s.matches({ app: "web", tier: "a" })).toBe(true);
    expect(s.matches({ app: "web", tier: "a", canary: "1" })).toBe(false);
    expect(s.toString()).toBe("app=web,!canary,tier in (a,b)");
  });
  it("an unknown operator is an error", () => {
    expect(() => labelSelectorAsSelector({ matchExpressions: [{ key: "a", operator: "Bogus" as "In" }] })).toThrow(
      '"Bogus" is not a valid label selector operator',
    );
  });
  it("In without values is an error", () => {
    expect(() => labelSelectorAsSelector({ matchExpressions: [{ key: "a", operator: "In", values: [] }] })).toThrow(
      "for 'in', 'notin' operators, values set can't be empty",
    );
  });
  it("labelSelectorMatches treats an invalid selector as matching nothing", () => {
    expect(labelSelectorMatches({ matchLabels: { "bad key": "x" } }, { "bad key": "x" })).toBe(false);
  });
  it("formatLabelSelector prints the selector form kubectl shows", () => {
    expect(formatLabelSelector({ matchLabels: { b: "2", a: "1" } })).toBe("a=1,b=2");
    expect(formatLabelSelector({})).toBe("<none>");
  });
});

describe("selectorFromSet", () => {
  it("matches objects carrying all the labels", () => {
    const s = selectorFromSet({ app: "web", tier: "fe" });
    expect(s.matches({ app: "web", tier: "fe", x: "y" })).toBe(true);
    expect(s.matches({ app: "web" })).toBe(false);
  });
  it("an empty set selects everything", () => {
    expect(selectorFromSet({}).empty()).toBe(true);
    expect(selectorFromSet(undefined).matches({ a: "b" })).toBe(true);
  });
});
