// mint.mjs - signs JWTs with jose, an implementation independent of
// imagegen's C code, for the integration tests (tests/lib/jose_helper.py).
//
//   node mint.mjs < request.json       prints one compact JWS and a newline
//   node mint.mjs genkey ES256|RS256   prints {"privateJwk":…,"publicJwk":…}
//
// The request is a JSON object:
//   alg         "HS256" | "ES256" | "RS256" (required)
//   secret      the HS256 secret, a string used as its UTF-8 bytes, or
//   privateJwk  the ES256/RS256 private key as a JWK object
//   claims      the JWT claims object (signed with SignJWT), or
//   payload     a string signed as it is (CompactSign), for odd payloads
//   kid         optional: the header's kid
//   header      optional: more protected-header members (override the
//               defaults alg, typ "JWT" and kid)
//
// Any error is a message on stderr and exit status 1: the tests must fail
// loudly, never sign something other than what they asked for.
import { CompactSign, SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';

const ALGS = new Set(['HS256', 'ES256', 'RS256']);

function fail(msg) {
	process.stderr.write(`mint.mjs: ${msg}\n`);
	process.exit(1);
}

async function readStdin() {
	const chunks = [];
	for await (const c of process.stdin)
		chunks.push(c);
	return Buffer.concat(chunks).toString('utf8');
}

async function genkey(alg) {
	if (alg !== 'ES256' && alg !== 'RS256')
		fail(`genkey: expected ES256 or RS256, got ${JSON.stringify(alg)}`);
	const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
	const privateJwk = await exportJWK(privateKey);
	const publicJwk = await exportJWK(publicKey);
	return { privateJwk, publicJwk };
}

async function signingKey(req) {
	if (req.alg === 'HS256') {
		if (typeof req.secret !== 'string' || req.secret.length === 0)
			fail('HS256 needs "secret" (a non-empty string)');
		return new TextEncoder().encode(req.secret);
	}
	if (req.privateJwk === null || typeof req.privateJwk !== 'object')
		fail(`${req.alg} needs "privateJwk" (a JWK object)`);
	if (typeof req.privateJwk.d !== 'string')
		fail(`${req.alg}: "privateJwk" is not a private key (no "d")`);
	return importJWK(req.privateJwk, req.alg);
}

async function mint(req) {
	if (req === null || typeof req !== 'object' || Array.isArray(req))
		fail('the request must be a JSON object');
	if (!ALGS.has(req.alg))
		fail(`alg: expected HS256, ES256 or RS256, got ${JSON.stringify(req.alg)}`);
	const header = { alg: req.alg, typ: 'JWT' };
	if (req.kid !== undefined && req.kid !== null) {
		if (typeof req.kid !== 'string')
			fail('kid must be a string');
		header.kid = req.kid;
	}
	if (req.header !== undefined && req.header !== null) {
		if (typeof req.header !== 'object' || Array.isArray(req.header))
			fail('header must be an object');
		Object.assign(header, req.header);
	}
	const key = await signingKey(req);
	if (typeof req.payload === 'string')
		return new CompactSign(new TextEncoder().encode(req.payload))
			.setProtectedHeader(header)
			.sign(key);
	if (req.claims === null || typeof req.claims !== 'object' || Array.isArray(req.claims))
		fail('claims must be an object (or give "payload" as a string)');
	return new SignJWT(req.claims).setProtectedHeader(header).sign(key);
}

async function main(argv) {
	if (argv[0] === 'genkey') {
		if (argv.length !== 2)
			fail('usage: node mint.mjs genkey ES256|RS256');
		process.stdout.write(JSON.stringify(await genkey(argv[1])) + '\n');
		return;
	}
	if (argv.length !== 0)
		fail('usage: node mint.mjs < request.json | node mint.mjs genkey ES256|RS256');
	let req;
	try {
		req = JSON.parse(await readStdin());
	} catch (e) {
		fail(`stdin is not JSON: ${e.message}`);
	}
	process.stdout.write((await mint(req)) + '\n');
}

main(process.argv.slice(2)).catch((e) => fail(e && e.stack ? e.stack : String(e)));
