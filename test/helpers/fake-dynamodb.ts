/**
 * A DynamoDB table in memory, answering UpdateItem as DynamoDB documents it, for the launcher's coordination tests
 * (aws-sdk-client-mock's `callsFake`): the item is created on first write; `ConditionExpression` is evaluated on the
 * item before the write, atomically with it; a failed condition throws ConditionalCheckFailedException, carrying the
 * item as it was when `ReturnValuesOnConditionCheckFailure` is ALL_OLD (its `Item`); `ReturnValues` ALL_NEW answers the
 * item after the write (`Attributes`). Expressions: `SET a = :v, ...` and `REMOVE a, ...` (names or `#n` placeholders);
 * conditions of `attribute_not_exists(a)`, `a = :v`, `a < :v`, `a > :v`, AND, OR and parentheses. Numbers compare as
 * numbers (`N`), strings as strings.
 */
type Value = { N?: string; S?: string };
type Item = Record<string, Value>;

export class FakeTable {
    readonly items = new Map<string, Item>();
    /** Every UpdateItem input, in order. */
    readonly calls: any[] = [];
    /** When set, every call throws this (the table is unavailable). */
    failWith?: Error;

    /** The item of a key (`id` = the given string). */
    item(id = "gate"): Item | undefined {
        return this.items.get(id);
    }

    /** Sets attributes of an item (numbers as N). */
    put(id: string, attrs: Record<string, number | string>): void {
        const item: Item = { ...(this.items.get(id) ?? { id: { S: id } }) };
        for (const [k, v] of Object.entries(attrs)) item[k] = typeof v === "number" ? { N: String(v) } : { S: v };
        this.items.set(id, item);
    }

    /** The UpdateItem handler for `mockClient(DynamoDBClient).on(UpdateItemCommand).callsFake(...)`. */
    updateItem = async (input: any) => {
        this.calls.push(input);
        if (this.failWith) throw this.failWith;
        const id = input.Key.id.S;
        const before = this.items.get(id);
        const names = input.ExpressionAttributeNames ?? {};
        const values: Record<string, Value> = input.ExpressionAttributeValues ?? {};
        const name = (n: string) => names[n] ?? n;
        if (input.ConditionExpression && !evaluate(input.ConditionExpression, before ?? {}, name, values)) {
            throw Object.assign(new Error("The conditional request failed"), {
                name: "ConditionalCheckFailedException",
                $metadata: { httpStatusCode: 400 },
                ...(input.ReturnValuesOnConditionCheckFailure === "ALL_OLD" && before ? { Item: structuredClone(before) } : {}),
            });
        }
        const after: Item = structuredClone(before ?? { id: { S: id } });
        const m = /^\s*(?:SET\s+(.+?))?\s*(?:REMOVE\s+(.+))?\s*$/.exec(input.UpdateExpression);
        for (const part of m?.[1]?.split(",") ?? []) {
            const [lhs, rhs] = part.split("=").map((x) => x.trim());
            after[name(lhs)] = structuredClone(values[rhs]);
        }
        for (const part of m?.[2]?.split(",") ?? []) delete after[name(part.trim())];
        this.items.set(id, after);
        return input.ReturnValues === "ALL_NEW" ? { Attributes: structuredClone(after) } : {};
    };
}

function evaluate(expr: string, item: Item, name: (n: string) => string, values: Record<string, Value>): boolean {
    const tokens = expr.match(/attribute_not_exists\(\s*[#\w]+\s*\)|\(|\)|AND|OR|<=|>=|<>|<|>|=|[#:]?\w+/g) ?? [];
    let i = 0;
    const operand = (t: string): number | string | undefined => {
        const v = t.startsWith(":") ? values[t] : item[name(t)];
        return v === undefined ? undefined : v.N !== undefined ? Number(v.N) : v.S;
    };
    const primary = (): boolean => {
        const t = tokens[i++];
        if (t === "(") {
            const v = or();
            i++; // ")"
            return v;
        }
        const notExists = /^attribute_not_exists\(\s*([#\w]+)\s*\)$/.exec(t);
        if (notExists) return item[name(notExists[1])] === undefined;
        const op = tokens[i++];
        const a = operand(t);
        const b = operand(tokens[i++]);
        if (a === undefined || b === undefined) return false;
        return op === "=" ? a === b : op === "<" ? a < b : op === ">" ? a > b : op === "<=" ? a <= b : op === ">=" ? a >= b : a !== b;
    };
    const and = (): boolean => {
        let v = primary();
        while (tokens[i] === "AND") {
            i++;
            v = primary() && v;
        }
        return v;
    };
    const or = (): boolean => {
        let v = and();
        while (tokens[i] === "OR") {
            i++;
            v = and() || v;
        }
        return v;
    };
    return or();
}
