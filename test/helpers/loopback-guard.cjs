/**
 * Loaded with `node --require` in a child process that runs a third-party SDK: every outgoing
 * connection (TCP, TLS, UDP) and every name lookup whose target is not loopback is refused before
 * a packet leaves, and recorded, one JSON line per attempt, in the file named by
 * EXHAUST_GUARD_LOG (the test fails when that file is not empty). CommonJS, no dependencies: it
 * must run before anything else in the child.
 */
"use strict";
const net = require("node:net");
const dns = require("node:dns");
const dgram = require("node:dgram");
const fs = require("node:fs");

const LOG = process.env.EXHAUST_GUARD_LOG;
if (!LOG) throw new Error("loopback-guard: EXHAUST_GUARD_LOG is not set");

function isLoopback(host) {
  if (host === undefined || host === null || host === "") return true; // Node's default: localhost
  const h = String(host)
    .replace(/^\[|\]$/g, "")
    .toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (/^::ffff:127\./.test(h)) return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function refuse(what, target) {
  const entry = {
    what,
    target: String(target),
    stack: new Error().stack
      .split("\n")
      .slice(2, 9)
      .map((l) => l.trim()),
  };
  fs.appendFileSync(LOG, `${JSON.stringify(entry)}\n`);
  const e = new Error(`loopback-guard: ${what} to ${target} refused (not loopback)`);
  e.code = "EXHAUST_GUARD";
  return e;
}

// Every TCP and TLS client socket connects through net.Socket.prototype.connect.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  let opts = args[0];
  if (Array.isArray(opts)) opts = opts[0];
  let host;
  let path;
  if (opts !== null && typeof opts === "object") {
    host = opts.host;
    path = opts.path;
  } else if (typeof opts === "string" && !/^\d+$/.test(opts)) {
    path = opts; // a Unix socket path
  } else if (typeof args[1] === "string") {
    host = args[1];
  }
  if (!path && !isLoopback(host)) {
    const e = refuse("connect", `${host}:${typeof opts === "object" && opts ? opts.port : opts}`);
    process.nextTick(() => this.destroy(e));
    return this;
  }
  return connect.apply(this, args);
};

const guardLookup = (original, what) =>
  function guardedLookup(hostname, ...rest) {
    if (!isLoopback(hostname)) {
      const e = refuse(what, hostname);
      const cb = rest.find((a) => typeof a === "function");
      if (cb) {
        process.nextTick(() => cb(e));
        return undefined;
      }
      return Promise.reject(e);
    }
    return original.call(this, hostname, ...rest);
  };
dns.lookup = guardLookup(dns.lookup, "dns.lookup");
dns.promises.lookup = guardLookup(dns.promises.lookup, "dns.lookup");
for (const fn of ["resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveTxt", "resolveSrv"]) {
  if (typeof dns[fn] === "function") dns[fn] = guardLookup(dns[fn], `dns.${fn}`);
  if (typeof dns.promises[fn] === "function") dns.promises[fn] = guardLookup(dns.promises[fn], `dns.${fn}`);
}

const send = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function guardedSend(...args) {
  const host = args.find((a, i) => i > 0 && typeof a === "string");
  if (host !== undefined && !isLoopback(host)) {
    const e = refuse("udp", host);
    const cb = args.find((a) => typeof a === "function");
    if (cb) process.nextTick(() => cb(e));
    return;
  }
  return send.apply(this, args);
};
const udpConnect = dgram.Socket.prototype.connect;
dgram.Socket.prototype.connect = function guardedUdpConnect(port, address, cb) {
  if (typeof address === "string" && !isLoopback(address)) throw refuse("udp", `${address}:${port}`);
  return udpConnect.call(this, port, address, cb);
};
