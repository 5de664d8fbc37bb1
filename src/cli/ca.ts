import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { join } from "node:path";
import {
  CA_CERT_FILE,
  CA_KEY_TYPES,
  DEFAULT_CA_KEY_TYPE,
  exportAuthority,
  initAuthority,
  loadAuthority,
  parseCaKeyType,
} from "../ca/authority.js";
import { loadOrCreateSigningIdentity, SIGNING_CERT_FILE } from "../ca/signing.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError } from "../errors.js";
import { DEFAULT_CERTS_DIR } from "../paths.js";
import { checkOut } from "./files.js";
import { trustHelp } from "./console.js";
import { runCommand } from "./run.js";

export function registerCaCommand(program: Command): void {
  const ca = program.command("ca").description("manage the certificate authority that signs intercepted hosts");

  ca.command("init")
    .description("create the CA (name-constrained to the catalogue's domains unless --unconstrained)")
    .option("--certs <dir>", "CA directory", DEFAULT_CERTS_DIR)
    .option("--unconstrained", "no name constraints (needed for --intercept all)")
    .option("--force", "replace an existing CA")
    .option("--catalog <file>", "endpoint catalogue the constraints come from")
    .option("--ca-key <type>", `the CA's key: ${CA_KEY_TYPES.join(" | ")} (ECDSA P-256 or RSA-2048)`, DEFAULT_CA_KEY_TYPE)
    .action((opts: { certs: string; unconstrained?: boolean; force?: boolean; catalog?: string; caKey: string }) =>
      runCommand(async () => {
        const keyType = parseCaKeyType(opts.caKey);
        const catalog = EndpointCatalog.load(opts.catalog);
        const authority = await initAuthority(opts.certs, {
          permittedDomains: catalog.constraintDomains(),
          unconstrained: opts.unconstrained ?? false,
          force: opts.force ?? false,
          keyType,
        });
        // The evidence-bundle signing key, issued by this CA (re-issued when the CA was replaced).
        await loadOrCreateSigningIdentity(authority);
        process.stdout.write(`${describe(authority)}signing      ${join(authority.dir, SIGNING_CERT_FILE)} (evidence bundles)\n`);
      }),
    );

  ca.command("show")
    .description("print the CA's subject, validity, constraints and SHA-256 fingerprint")
    .option("--certs <dir>", "CA directory", DEFAULT_CERTS_DIR)
    .option("--json", "print JSON")
    .action((opts: { certs: string; json?: boolean }) =>
      runCommand(async () => {
        const authority = await loadAuthority(opts.certs);
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify(
              {
                subject: authority.subject,
                fingerprint256: authority.fingerprint256,
                keyType: authority.keyType,
                notAfter: authority.notAfter.toISOString(),
                constrained: authority.constrained,
                permittedDomains: authority.permittedDomains,
                certFile: join(authority.dir, CA_CERT_FILE),
              },
              null,
              2,
            )}\n`,
          );
        } else {
          process.stdout.write(describe(authority));
        }
      }),
    );

  ca.command("export")
    .description("write the CA certificate (never the key) for installing in trust stores")
    .option("--certs <dir>", "CA directory", DEFAULT_CERTS_DIR)
    .option("--format <format>", "pem | der", "pem")
    .option("--out <file>", "output file (default: standard output)")
    .option("--force", "replace an existing --out file")
    .action((opts: { certs: string; format: string; out?: string; force?: boolean }) =>
      runCommand(async () => {
        if (opts.format !== "pem" && opts.format !== "der") {
          throw exhaustError("EXH_OPT_INVALID", { option: "--format", reason: `expected pem or der, got "${opts.format}"` });
        }
        const authority = await loadAuthority(opts.certs);
        const data = exportAuthority(authority, opts.format);
        if (opts.out) writeFileSync(opts.out, data, { flag: checkOut(opts.out, opts.force) ? "w" : "wx" });
        else process.stdout.write(data);
      }),
    );

  ca.command("trust-help")
    .description("print how to trust the CA on Windows, macOS, Linux and in clients with their own store")
    .option("--certs <dir>", "CA directory", DEFAULT_CERTS_DIR)
    .action((opts: { certs: string }) =>
      runCommand(async () => {
        // The CA must exist: instructions for a file that is not there would mislead.
        const authority = await loadAuthority(opts.certs);
        process.stdout.write(`${trustHelp(join(opts.certs, CA_CERT_FILE))}fingerprint SHA-256 ${authority.fingerprint256}\n`);
      }),
    );
}

function describe(a: Awaited<ReturnType<typeof loadAuthority>>): string {
  const lines = [
    `subject      ${a.subject}`,
    `fingerprint  SHA-256 ${a.fingerprint256}`,
    `key          ${a.keyType === "ecdsa" ? "ECDSA P-256" : `RSA-${a.key.asymmetricKeyDetails?.modulusLength ?? "?"}`}`,
    `valid until  ${a.notAfter.toISOString()}`,
    `constraints  ${a.constrained ? `only ${a.permittedDomains.join(", ")}` : "none (can sign any host: keep the key safe)"}`,
    `certificate  ${join(a.dir, CA_CERT_FILE)}`,
  ];
  if (a.keyFileModeRepairedFrom !== undefined) {
    lines.push(`warning      the key file was mode ${a.keyFileModeRepairedFrom.toString(8)}; it is 0600 again`);
  }
  return `${lines.join("\n")}\n`;
}
