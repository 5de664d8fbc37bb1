/**
 * A stand-in for the VS Code extension host, loaded with `node --require` in a child process that
 * runs @vscode/extension-telemetry: it provides the `vscode` module (only what that package reads:
 * EventEmitter, TelemetryTrustedValue, env.machineId / sessionId / createTelemetryLogger,
 * workspace.getConfiguration) and does what the host does around an extension's telemetry:
 *
 * - the telemetry logger mixes in the host's common properties (common.vscodemachineid,
 *   common.vscodesessionid, common.sqmid, common.devDeviceId, ...) and prefixes the event name with
 *   the extension id, as VS Code's ExtHostTelemetryLogger does (src/vs/workbench/api/common/extHostTelemetry.ts);
 * - the host's proxy support (`http.proxy`) routes the extension's https requests through the
 *   proxy: here https.globalAgent tunnels (CONNECT) through VSCODE_HOST_PROXY (exhaust).
 *
 * Values come from the environment (VSCODE_HOST_MACHINE_ID, VSCODE_HOST_SESSION_ID, ...) so the
 * test knows them. Not part of exhaust: a test fixture for a third-party package.
 */
"use strict";
const Module = require("node:module");
const http = require("node:http");
const https = require("node:https");
const tls = require("node:tls");

const env = process.env;
const EXTENSION = { publisher: "exhaust-lab", name: "probe", version: "0.0.1" };

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (listener) => {
      this.listeners.push(listener);
      return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
    };
  }
  fire(value) {
    for (const l of this.listeners) l(value);
  }
  dispose() {
    this.listeners = [];
  }
}

class TelemetryTrustedValue {
  constructor(value) {
    this.value = value;
  }
}

const settings = { telemetry: { telemetryLevel: "all", internalTesting: false } };
const workspace = {
  getConfiguration(section) {
    const values = settings[section] ?? {};
    return { get: (key, fallback) => (key in values ? values[key] : fallback), has: (key) => key in values };
  },
};

const machineId = env.VSCODE_HOST_MACHINE_ID ?? "";
const sessionId = env.VSCODE_HOST_SESSION_ID ?? "";

/** The host's common properties (extHostTelemetry.ts getCommonProperties). */
function commonProperties() {
  return {
    "common.os": process.platform,
    "common.extname": `${EXTENSION.publisher}.${EXTENSION.name}`,
    "common.extversion": EXTENSION.version,
    "common.vscodemachineid": machineId,
    "common.vscodesessionid": sessionId,
    "common.vscodecommithash": env.VSCODE_HOST_COMMIT ?? "",
    "common.sqmid": env.VSCODE_HOST_SQM_ID ?? "",
    "common.devDeviceId": env.VSCODE_HOST_DEV_DEVICE_ID ?? "",
    "common.vscodeversion": env.VSCODE_HOST_VERSION ?? "1.106.0",
    "common.isnewappinstall": false,
    "common.product": "desktop",
    "common.uikind": "desktop",
    "common.remotename": "none",
  };
}

function createTelemetryLogger(sender, options = {}) {
  const onDidChangeEnableStates = new EventEmitter();
  const mixIn = (data = {}) => {
    const properties = {};
    for (const [k, v] of Object.entries(data.properties ?? {})) properties[k] = v instanceof TelemetryTrustedValue ? v.value : v;
    Object.assign(properties, options.additionalCommonProperties ?? {});
    if (!options.ignoreBuiltInCommonProperties) Object.assign(properties, commonProperties());
    return { ...data, properties };
  };
  const name = (eventName) => `${EXTENSION.publisher}.${EXTENSION.name}/${eventName}`;
  return {
    isUsageEnabled: settings.telemetry.telemetryLevel === "all",
    isErrorsEnabled: settings.telemetry.telemetryLevel !== "off",
    onDidChangeEnableStates: onDidChangeEnableStates.event,
    logUsage: (eventName, data) => sender.sendEventData(name(eventName), mixIn(data)),
    logError: (eventNameOrError, data) =>
      typeof eventNameOrError === "string"
        ? sender.sendEventData(name(eventNameOrError), mixIn(data))
        : sender.sendErrorData(eventNameOrError, mixIn(data)),
    dispose: () => onDidChangeEnableStates.dispose(),
  };
}

const vscode = {
  version: env.VSCODE_HOST_VERSION ?? "1.106.0",
  EventEmitter,
  TelemetryTrustedValue,
  env: { machineId, sessionId, appHost: "desktop", isTelemetryEnabled: true, createTelemetryLogger },
  workspace,
  extensions: { getExtension: () => undefined, all: [] },
};

// `require("vscode")` answers with the stand-in, as the extension host's module interceptor does.
const VSCODE_ID = "\0vscode-host-shim";
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveVscode(request, ...rest) {
  return request === "vscode" ? VSCODE_ID : resolve.call(this, request, ...rest);
};
const shim = new Module(VSCODE_ID);
shim.exports = vscode;
shim.loaded = true;
Module._cache[VSCODE_ID] = shim;

// The host's proxy support: the extension's https requests go through the configured proxy.
if (env.VSCODE_HOST_PROXY) {
  const proxy = new URL(env.VSCODE_HOST_PROXY);
  class TunnelAgent extends https.Agent {
    createConnection(options, done) {
      const authority = `${options.host}:${options.port ?? 443}`;
      const req = http.request({
        host: proxy.hostname,
        port: Number(proxy.port),
        method: "CONNECT",
        path: authority,
        headers: { host: authority },
      });
      req.once("connect", (res, socket) => {
        if (res.statusCode !== 200) return done(new Error(`proxy answered CONNECT with ${res.statusCode}`));
        done(null, tls.connect({ ...options, socket, servername: options.servername ?? options.host }));
      });
      req.once("error", done);
      req.end();
    }
  }
  https.globalAgent = new TunnelAgent({ keepAlive: false });
}
