// Label selectors: parsing the string syntax ("app=web,tier in (a,b),!canary"), converting the
// structured metav1.LabelSelector, and matching — k8s.io/apimachinery/pkg/labels, in TypeScript.

import type { LabelSelector } from "./meta.ts";
import { formatFieldErrors, invalid, notSupported, type FieldError, child, index, key as keyPath } from "./validation/field.ts";
import { isQualifiedName, isValidLabelValue } from "./validation/names.ts";

/** A selector (label or field) that did not parse or is not allowed. Maps to 400 BadRequest. */
export class SelectorError extends Error {
  override readonly name = "SelectorError";
  readonly code = "BadRequest";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** selection.Operator, spelled as Kubernetes spells it. */
export type Operator = "=" | "==" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";

/** One term of a label selector: key, operator, and values (sorted for in/notin from the parser). */
export class Requirement {
  readonly key: string;
  readonly operator: Operator;
  readonly values: readonly string[];
  constructor(key: string, operator: Operator, values: readonly string[]) {
    this.key = key;
    this.operator = operator;
    this.values = values;
  }

  /** Whether the label set satisfies this term (labels.Requirement.Matches). */
  matches(labels: Record<string, string> | undefined): boolean {
    const has = labels !== undefined && labels !== null && Object.prototype.hasOwnProperty.call(labels, this.key);
    const value = has ? labels![this.key] : undefined;
    switch (this.operator) {
      case "in":
      case "=":
      case "==":
        return has && this.values.includes(value!);
      case "notin":
      case "!=":
        return !has || !this.values.includes(value!);
      case "exists":
        return has;
      case "!":
        return !has;
      case "gt":
      case "lt": {
        if (!has || !/^[+-]?\d+$/.test(value!)) return false;
        const lhs = BigInt(value!);
        const rhs = BigInt(this.values[0]);
        return this.operator === "gt" ? lhs > rhs : lhs < rhs;
      }
    }
  }

  toString(): string {
    switch (this.operator) {
      case "exists":
        return this.key;
      case "!":
        return `!${this.key}`;
      case "in":
      case "notin":
        return `${this.key} ${this.operator} (${[...this.values].sort().join(",")})`;
      case "gt":
        return `${this.key}>${this.values[0]}`;
      case "lt":
        return `${this.key}<${this.values[0]}`;
      default:
        return `${this.key}${this.operator}${this.values[0] ?? ""}`;
    }
  }
}

/** A parsed label query. Immutable. */
export interface Selector {
  /** True when every requirement holds for the labels (undefined labels: the empty set). */
  matches(labels: Record<string, string> | undefined): boolean;
  /** True when the selector has no requirements and so matches everything. */
  empty(): boolean;
  /** The canonical string form, requirements sorted by key; "" for everything (and for nothing). */
  toString(): string;
  requirements(): Requirement[];
}

class InternalSelector implements Selector {
  private readonly reqs: readonly Requirement[];
  constructor(reqs: Requirement[]) {
    // Stable sort by key, as internalSelector.Add does.
    this.reqs = [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  matches(labels: Record<string, string> | undefined): boolean {
    return this.reqs.every((r) => r.matches(labels));
  }
  empty(): boolean {
    return this.reqs.length === 0;
  }
  toString(): string {
    return this.reqs.map((r) => r.toString()).join(",");
  }
  requirements(): Requirement[] {
    return [...this.reqs];
  }
}

class NothingSelector implements Selector {
  matches(): boolean {
    return false;
  }
  empty(): boolean {
    return false;
  }
  toString(): string {
    return "";
  }
  requirements(): Requirement[] {
    return [];
  }
}

/** The selector that matches every object. */
export function everything(): Selector {
  return new InternalSelector([]);
}

/** The selector that matches no object (what a null LabelSelector means). */
export function nothing(): Selector {
  return new NothingSelector();
}

// ---------------------------------------------------------------------------------------------
// Requirements

function validateLabelKey(k: string, path: string): FieldError | undefined {
  const errs = isQualifiedName(k);
  return errs.length ? invalid(path, k, errs.join("; ")) : undefined;
}

function validateLabelValue(k: string, v: string, path: string): FieldError | undefined {
  const errs = isValidLabelValue(v);
  return errs.length ? invalid(keyPath(path, k), v, errs.join("; ")) : undefined;
}

const VALID_OPERATORS: readonly Operator[] = ["!", "=", "==", "in", "!=", "notin", "exists", "gt", "lt"];

/**
 * labels.NewRequirement: validates the key, values and operator; throws SelectorError whose
 * message is the aggregated field errors, e.g. `values[0][tier]: Invalid value: "a b": …`.
 */
export function newRequirement(key: string, op: Operator, vals: readonly string[], path = ""): Requirement {
  const errs: FieldError[] = [];
  const keyErr = validateLabelKey(key, child(path, "key"));
  if (keyErr) errs.push(keyErr);
  const valuePath = child(path, "values");
  switch (op) {
    case "in":
    case "notin":
      if (vals.length === 0) errs.push(invalid(valuePath, [...vals], "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case "=":
    case "==":
    case "!=":
      if (vals.length !== 1) errs.push(invalid(valuePath, [...vals], "exact-match compatibility requires one single value"));
      break;
    case "exists":
    case "!":
      if (vals.length !== 0) errs.push(invalid(valuePath, [...vals], "values set must be empty for exists and does not exist"));
      break;
    case "gt":
    case "lt":
      if (vals.length !== 1) errs.push(invalid(valuePath, [...vals], "for 'Gt', 'Lt' operators, exactly one value is required"));
      vals.forEach((v, i) => {
        if (!/^[+-]?\d+$/.test(v)) errs.push(invalid(index(valuePath, i), v, "for 'Gt', 'Lt' operators, the value must be an integer"));
      });
      break;
    default:
      errs.push(notSupported(child(path, "operator"), op, VALID_OPERATORS));
  }
  vals.forEach((v, i) => {
    const e = validateLabelValue(key, v, index(valuePath, i));
    if (e) errs.push(e);
  });
  if (errs.length) throw new SelectorError(formatFieldErrors(errs));
  return new Requirement(key, op, [...vals]);
}

// ---------------------------------------------------------------------------------------------
// The string syntax: a lexer and a recursive-descent parser shaped like labels/selector.go.

const Token = {
  Error: 0,
  EndOfString: 1,
  ClosedPar: 2,
  Comma: 3,
  DoesNotExist: 4,
  DoubleEquals: 5,
  Equals: 6,
  GreaterThan: 7,
  Identifier: 8,
  In: 9,
  LessThan: 10,
  NotEquals: 11,
  NotIn: 12,
  OpenPar: 13,
} as const;
type Token = (typeof Token)[keyof typeof Token];

const STRING_TO_TOKEN: ReadonlyMap<string, Token> = new Map([
  [")", Token.ClosedPar],
  [",", Token.Comma],
  ["!", Token.DoesNotExist],
  ["!=", Token.NotEquals],
  ["(", Token.OpenPar],
  ["=", Token.Equals],
  ["==", Token.DoubleEquals],
  [">", Token.GreaterThan],
  ["in", Token.In],
  ["<", Token.LessThan],
  ["notin", Token.NotIn],
]);

const isWhitespace = (ch: string): boolean => ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
const isSpecialSymbol = (ch: string): boolean => "=!(),><".includes(ch);

interface ScannedItem {
  tok: Token;
  literal: string;
}

function lex(s: string): ScannedItem[] {
  const items: ScannedItem[] = [];
  let pos = 0;
  for (;;) {
    while (pos < s.length && isWhitespace(s[pos])) pos++;
    if (pos >= s.length) {
      items.push({ tok: Token.EndOfString, literal: "" });
      return items;
    }
    if (isSpecialSymbol(s[pos])) {
      // Longest run of special symbols that still forms a token.
      let buffer = "";
      let last: ScannedItem | undefined;
      while (pos < s.length && isSpecialSymbol(s[pos])) {
        buffer += s[pos];
        const t = STRING_TO_TOKEN.get(buffer);
        if (t !== undefined) {
          last = { tok: t, literal: buffer };
          pos++;
        } else if (last) {
          break;
        } else {
          pos++;
        }
      }
      items.push(last ?? { tok: Token.Error, literal: `error expected: keyword found '${buffer}'` });
    } else {
      let buffer = "";
      while (pos < s.length && !isSpecialSymbol(s[pos]) && !isWhitespace(s[pos])) buffer += s[pos++];
      items.push({ tok: STRING_TO_TOKEN.get(buffer) ?? Token.Identifier, literal: buffer });
    }
  }
}

/** In the Values context the keywords "in" and "notin" are ordinary identifiers. */
type ParserContext = "KeyAndOperator" | "Values";

const BINARY_OPERATORS = ["in", "notin", "=", "==", "!=", "gt", "lt"];

class Parser {
  private position = 0;
  private readonly items: ScannedItem[];
  constructor(items: ScannedItem[]) {
    this.items = items;
  }

  private lookahead(ctx: ParserContext): ScannedItem {
    const it = this.items[Math.min(this.position, this.items.length - 1)];
    if (ctx === "Values" && (it.tok === Token.In || it.tok === Token.NotIn)) return { tok: Token.Identifier, literal: it.literal };
    return it;
  }

  private consume(ctx: ParserContext): ScannedItem {
    const it = this.lookahead(ctx);
    if (this.position < this.items.length - 1) this.position++;
    return it;
  }

  parse(): Requirement[] {
    const reqs: Requirement[] = [];
    for (;;) {
      const { tok, literal } = this.lookahead("Values");
      switch (tok) {
        case Token.Identifier:
        case Token.DoesNotExist: {
          try {
            reqs.push(this.parseRequirement());
          } catch (e) {
            throw new SelectorError(`unable to parse requirement: ${(e as Error).message}`, { cause: e });
          }
          const next = this.consume("Values");
          if (next.tok === Token.EndOfString) return reqs;
          if (next.tok === Token.Comma) {
            const after = this.lookahead("Values");
            if (after.tok !== Token.Identifier && after.tok !== Token.DoesNotExist) {
              throw new SelectorError(`found '${after.literal}', expected: identifier after ','`);
            }
            break;
          }
          throw new SelectorError(`found '${next.literal}', expected: ',' or 'end of string'`);
        }
        case Token.EndOfString:
          return reqs;
        default:
          throw new SelectorError(`found '${literal}', expected: !, identifier, or 'end of string'`);
      }
    }
  }

  private parseRequirement(): Requirement {
    const { key, operator } = this.parseKeyAndInferOperator();
    if (operator === "exists" || operator === "!") return newRequirement(key, operator, []);
    const op = this.parseOperator();
    let values: string[];
    if (op === "in" || op === "notin") values = this.parseValues();
    else values = this.parseExactValue();
    return newRequirement(key, op, [...new Set(values)].sort());
  }

  private parseKeyAndInferOperator(): { key: string; operator: Operator | undefined } {
    let operator: Operator | undefined;
    let it = this.consume("Values");
    if (it.tok === Token.DoesNotExist) {
      operator = "!";
      it = this.consume("Values");
    }
    if (it.tok !== Token.Identifier) throw new SelectorError(`found '${it.literal}', expected: identifier`);
    // The parser has no field path, which Kubernetes prints as "<nil>".
    const keyErr = validateLabelKey(it.literal, "<nil>");
    if (keyErr) throw new SelectorError(formatFieldErrors([keyErr]));
    const next = this.lookahead("Values").tok;
    if ((next === Token.EndOfString || next === Token.Comma) && operator !== "!") operator = "exists";
    return { key: it.literal, operator };
  }

  private parseOperator(): Operator {
    const { tok, literal } = this.consume("KeyAndOperator");
    switch (tok) {
      case Token.In:
        return "in";
      case Token.Equals:
        return "=";
      case Token.DoubleEquals:
        return "==";
      case Token.GreaterThan:
        return "gt";
      case Token.LessThan:
        return "lt";
      case Token.NotIn:
        return "notin";
      case Token.NotEquals:
        return "!=";
      default:
        throw new SelectorError(`found '${literal}', expected: ${BINARY_OPERATORS.join(", ")}`);
    }
  }

  private parseValues(): string[] {
    const open = this.consume("Values");
    if (open.tok !== Token.OpenPar) throw new SelectorError(`found '${open.literal}' expected: '('`);
    const { tok, literal } = this.lookahead("Values");
    switch (tok) {
      case Token.Identifier:
      case Token.Comma: {
        const s = this.parseIdentifiersList();
        const close = this.consume("Values");
        if (close.tok !== Token.ClosedPar) throw new SelectorError(`found '${literal}', expected: ')'`);
        return s;
      }
      case Token.ClosedPar:
        this.consume("Values");
        return [""];
      default:
        throw new SelectorError(`found '${literal}', expected: ',', ')' or identifier`);
    }
  }

  private parseIdentifiersList(): string[] {
    const s = new Set<string>();
    for (;;) {
      const { tok, literal } = this.consume("Values");
      switch (tok) {
        case Token.Identifier: {
          s.add(literal);
          const next = this.lookahead("Values");
          if (next.tok === Token.Comma) continue;
          if (next.tok === Token.ClosedPar) return [...s];
          throw new SelectorError(`found '${next.literal}', expected: ',' or ')'`);
        }
        case Token.Comma: {
          // "(," ",)" and ",," each stand for an empty value.
          if (s.size === 0) s.add("");
          const next = this.lookahead("Values");
          if (next.tok === Token.ClosedPar) {
            s.add("");
            return [...s];
          }
          if (next.tok === Token.Comma) {
            this.consume("Values");
            s.add("");
          }
          break;
        }
        default:
          throw new SelectorError(`found '${literal}', expected: ',', or identifier`);
      }
    }
  }

  private parseExactValue(): string[] {
    const next = this.lookahead("Values");
    if (next.tok === Token.EndOfString || next.tok === Token.Comma) return [""];
    const it = this.consume("Values");
    if (it.tok === Token.Identifier) return [it.literal];
    throw new SelectorError(`found '${it.literal}', expected: identifier`);
  }
}

/**
 * labels.Parse: the string syntax of `?labelSelector=` and `kubectl -l`. Supports `a=b`, `a==b`,
 * `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated (AND).
 * "" selects everything. Throws SelectorError naming the bad part.
 */
export function parseLabelSelector(s: string): Selector {
  return new InternalSelector(new Parser(lex(s)).parse());
}

/**
 * metav1.LabelSelectorAsSelector: null/undefined selects nothing, `{}` everything.
 * Throws SelectorError for an invalid key, value or operator.
 */
export function labelSelectorAsSelector(sel: LabelSelector | undefined | null): Selector {
  if (sel === undefined || sel === null) return nothing();
  const matchLabels = sel.matchLabels ?? {};
  const exprs = sel.matchExpressions ?? [];
  if (Object.keys(matchLabels).length + exprs.length === 0) return everything();
  const reqs: Requirement[] = [];
  for (const [k, v] of Object.entries(matchLabels)) reqs.push(newRequirement(k, "=", [v]));
  for (const e of exprs) {
    let op: Operator;
    switch (e.operator) {
      case "In":
        op = "in";
        break;
      case "NotIn":
        op = "notin";
        break;
      case "Exists":
        op = "exists";
        break;
      case "DoesNotExist":
        op = "!";
        break;
      default:
        throw new SelectorError(`${JSON.stringify(String(e.operator))} is not a valid label selector operator`);
    }
    reqs.push(newRequirement(e.key, op, [...(e.values ?? [])]));
  }
  return new InternalSelector(reqs);
}

/** labels.SelectorFromSet: key=value for each entry; an empty or missing set selects everything. */
export function selectorFromSet(labels: Record<string, string> | undefined | null): Selector {
  if (!labels) return everything();
  return new InternalSelector(Object.entries(labels).map(([k, v]) => new Requirement(k, "=", [v])));
}

/**
 * Whether a metav1.LabelSelector matches the labels, treating an invalid selector as matching
 * nothing (controllers use this on objects the apiserver already validated).
 */
export function labelSelectorMatches(sel: LabelSelector | undefined | null, labels: Record<string, string> | undefined): boolean {
  try {
    return labelSelectorAsSelector(sel).matches(labels);
  } catch {
    return false;
  }
}

/** The string form of a metav1.LabelSelector (what Scale.status.selector carries). */
export function formatLabelSelector(sel: LabelSelector | undefined | null): string {
  if (sel === undefined || sel === null) return "<none>";
  const s = labelSelectorAsSelector(sel);
  return s.empty() ? "<none>" : s.toString();
}
