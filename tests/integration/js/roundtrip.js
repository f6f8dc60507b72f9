#!/usr/bin/env node
// Drives an unmodified @aws-sdk/client-kinesis (JS SDK v3) against a Kinesis endpoint, for test_clients.py.
//
//   node roundtrip.js ENDPOINT STREAM HANDLER < plan.json
//
// HANDLER: "default" (the client's own default request handler, untouched), "h1" (NodeHttpHandler, HTTP/1.1) or
// "h2" (NodeHttp2Handler given explicitly). plan.json: {"records": [{"data": base64, "pk": str, "ehk": str|null}]}.
// The first record goes through PutRecord, the rest through one PutRecords call. Everything is read back from
// TRIM_HORIZON on every shard; Python compares the bytes. The script never decides pass/fail by itself: it prints
// one JSON report on stdout (exit 0), or {"fatal": {...}} (exit 2) when a call that must work failed.
//
// Credentials and region come from the environment (AWS_ACCESS_KEY_ID, ..., AWS_REGION) through the SDK's default
// provider chain, exactly as an application would configure it.
"use strict";

const path = require("node:path");
const http = require("node:http");
const http2 = require("node:http2");

const NODE_MODULES = process.env.KN_NODE_MODULES ||
    path.resolve(__dirname, "..", "..", "..", ".deps", "node", "node_modules");
const sdk = require(path.join(NODE_MODULES, "@aws-sdk", "client-kinesis"));
const { NodeHttpHandler, NodeHttp2Handler } = require(path.join(NODE_MODULES, "@smithy", "node-http-handler"));

// Evidence of the protocol actually spoken, gathered by wrapping node's own entry points (the SDK's handlers call
// http2.connect and http.request through the module objects). remoteSettings proves the *server* sent an HTTP/2
// SETTINGS frame, i.e. it really negotiated h2 rather than the client merely trying.
const wire = { h2Sessions: 0, h2RemoteSettings: 0, h2Streams: 0, h1Requests: 0, h2Errors: [] };
const origConnect = http2.connect;
http2.connect = function (...args) {
    const session = origConnect.apply(this, args);
    wire.h2Sessions++;
    session.once("remoteSettings", () => { wire.h2RemoteSettings++; });
    session.on("stream", () => {});
    session.on("error", (e) => { wire.h2Errors.push(String(e.code || e.message)); });
    const origRequest = session.request;
    session.request = function (...rargs) {
        wire.h2Streams++;
        return origRequest.apply(this, rargs);
    };
    return session;
};
const origHttpRequest = http.request;
http.request = function (...args) {
    wire.h1Requests++;
    return origHttpRequest.apply(this, args);
};

function makeClient(endpoint, handler) {
    const cfg = { endpoint, maxAttempts: 1 };
    if (handler === "h1") cfg.requestHandler = new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 30000 });
    else if (handler === "h2") cfg.requestHandler = new NodeHttp2Handler({ requestTimeout: 30000 });
    else if (handler !== "default") throw new Error(`unknown handler ${handler}`);
    return new sdk.KinesisClient(cfg);
}

function errInfo(e) {
    return {
        name: e.name, message: e.message, code: e.code || null,
        status: e.$metadata ? e.$metadata.httpStatusCode ?? null : null,
        requestId: e.$metadata ? e.$metadata.requestId ?? null : null,
        fault: e.$fault || null,
    };
}

function recOut(shardId, r) {
    return {
        shard: shardId, seq: r.SequenceNumber, pk: r.PartitionKey,
        data: Buffer.from(r.Data).toString("base64"),
        ts: r.ApproximateArrivalTimestamp instanceof Date ? r.ApproximateArrivalTimestamp.getTime() : null,
    };
}

async function waitActive(client, stream) {
    for (let i = 0; i < 600; i++) {
        const d = await client.send(new sdk.DescribeStreamSummaryCommand({ StreamName: stream }));
        if (d.StreamDescriptionSummary.StreamStatus === "ACTIVE") return d.StreamDescriptionSummary;
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`stream ${stream} not ACTIVE`);
}

async function readShard(client, stream, shardId, want) {
    const it = await client.send(new sdk.GetShardIteratorCommand(
        { StreamName: stream, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }));
    let iter = it.ShardIterator;
    const out = [];
    // A shard may answer empty pages before the end; stop after a few empty ones once nothing more is expected.
    for (let empty = 0; iter && empty < 3 && out.length < want;) {
        const page = await client.send(new sdk.GetRecordsCommand({ ShardIterator: iter, Limit: 1000 }));
        for (const r of page.Records) out.push(recOut(shardId, r));
        empty = page.Records.length ? 0 : empty + 1;
        iter = page.NextShardIterator;
    }
    return out;
}

async function errorCases(client, stream) {
    const cases = {};
    const attempt = async (label, cmd) => {
        try {
            await client.send(cmd);
            cases[label] = { ok: true };
        } catch (e) {
            cases[label] = errInfo(e);
        }
    };
    await attempt("missing_stream", new sdk.DescribeStreamSummaryCommand({ StreamName: `${stream}-missing` }));
    await attempt("long_partition_key", new sdk.PutRecordCommand(
        { StreamName: stream, PartitionKey: "k".repeat(257), Data: Buffer.from("x") }));
    return cases;
}

async function main() {
    const [endpoint, stream, handler] = process.argv.slice(2);
    const plan = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const client = makeClient(endpoint, handler);
    const report = { handler: client.config.requestHandler.constructor.name, wire, sdkStage: "create" };
    try {
        report.handlerProtocol = client.config.requestHandler.metadata?.handlerProtocol ?? null;
        await client.send(new sdk.CreateStreamCommand({ StreamName: stream, ShardCount: plan.shards || 2 }));
        report.sdkStage = "wait";
        await waitActive(client, stream);

        report.sdkStage = "put";
        const recs = plan.records.map((r) => ({
            Data: Buffer.from(r.data, "base64"), PartitionKey: r.pk,
            ...(r.ehk ? { ExplicitHashKey: r.ehk } : {}),
        }));
        const single = await client.send(new sdk.PutRecordCommand({ StreamName: stream, ...recs[0] }));
        const batch = await client.send(new sdk.PutRecordsCommand({ StreamName: stream, Records: recs.slice(1) }));
        report.put = [{ shard: single.ShardId, seq: single.SequenceNumber }]
            .concat(batch.Records.map((r) => (r.ErrorCode ? { error: r.ErrorCode, message: r.ErrorMessage }
                : { shard: r.ShardId, seq: r.SequenceNumber })));
        report.failedRecordCount = batch.FailedRecordCount;

        report.sdkStage = "read";
        const shards = await client.send(new sdk.ListShardsCommand({ StreamName: stream }));
        report.shards = shards.Shards.map((s) => s.ShardId);
        report.read = [];
        for (const s of report.shards) {
            const want = report.put.filter((p) => p.shard === s).length;
            report.read.push(...await readShard(client, stream, s, want));
        }

        report.sdkStage = "errors";
        report.errors = await errorCases(client, stream);

        report.sdkStage = "delete";
        await client.send(new sdk.DeleteStreamCommand({ StreamName: stream }));
        report.sdkStage = "done";
    } catch (e) {
        report.fatal = errInfo(e);
        report.fatal.stack = String(e.stack || "").split("\n").slice(0, 6).join("\n");
    } finally {
        client.destroy();
    }
    process.stdout.write(JSON.stringify(report) + "\n");
    process.exitCode = report.fatal ? 2 : 0;
}

main().catch((e) => {
    process.stdout.write(JSON.stringify({ fatal: errInfo(e) }) + "\n");
    process.exitCode = 2;
});
