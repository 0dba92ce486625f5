// openapi_lint.mjs FILE - lints an OpenAPI document with
// @seriousme/openapi-schema-validator (the OpenAPI 3.1 JSON Schemas) and
// checks that every local $ref resolves. Prints one JSON line
// {"valid": bool, "version": "3.1", "errors": [...]}; exit 0 only when valid.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2];
if (!file) {
	console.error("usage: node openapi_lint.mjs FILE");
	process.exit(2);
}
const doc = JSON.parse(readFileSync(file, "utf8"));
const validator = new Validator();
const res = await validator.validate(structuredClone(doc));
const errors = res.valid ? [] : [].concat(res.errors ?? []);

function pointer(root, ref) {
	let node = root;
	for (const raw of ref.slice(2).split("/")) {
		const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
		if (node === null || typeof node !== "object" || !(key in node))
			return undefined;
		node = node[key];
	}
	return node;
}

function walk(node, at) {
	if (Array.isArray(node)) {
		node.forEach((v, i) => walk(v, `${at}/${i}`));
		return;
	}
	if (node === null || typeof node !== "object")
		return;
	for (const [k, v] of Object.entries(node)) {
		if (k === "$ref" && typeof v === "string") {
			if (!v.startsWith("#/"))
				errors.push({ at, message: `non-local $ref ${v}` });
			else if (pointer(doc, v) === undefined)
				errors.push({ at, message: `$ref ${v} does not resolve` });
		} else {
			walk(v, `${at}/${k}`);
		}
	}
}
walk(doc, "#");

const ids = new Map();
for (const [path, item] of Object.entries(doc.paths ?? {}))
	for (const [method, op] of Object.entries(item))
		if (op && typeof op === "object" && op.operationId) {
			if (ids.has(op.operationId))
				errors.push({ at: `#/paths/${path}/${method}`,
				    message: `operationId ${op.operationId} also at ${ids.get(op.operationId)}` });
			ids.set(op.operationId, `${method} ${path}`);
		}

console.log(JSON.stringify({ valid: errors.length === 0, version: validator.version, errors }));
process.exit(errors.length === 0 ? 0 : 1);
