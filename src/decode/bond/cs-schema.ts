/**
 * The Common Schema Record's table in Bond (wire-formats.md §3.5): the Part A extensions by
 * ordinal with their §2.3 JSON names and field kinds, the Record's string fields, and ValueKind.
 * Data only: the decoder (onecollector.ts) reads by it.
 */
import type { FieldType } from "../types.js";

// ---- Part A schema (§3.5 ordinals, §2.3 JSON names) ---------------------------------------------

export type ExtKind = "string" | "int32" | "uint32" | "int64" | "uint64" | "double" | "bool" | "strmap" | "strlists";

export interface ExtField {
  path: string;
  kind: ExtKind;
}

export interface ExtSchema {
  /** Bond field name of the Record, for messages (`extApp`). */
  bond: string;
  prefix: string;
  fields: Map<number, ExtField>;
}

function ext(bond: string, json: string, spec: Array<[id: number, name: string, kind?: ExtKind]>): ExtSchema {
  const prefix = `ext.${json}.`;
  return { bond, prefix, fields: new Map(spec.map(([id, name, kind]) => [id, { path: prefix + name, kind: kind ?? "string" }])) };
}

/** Record ordinal → extension schema. */
export const CS_EXTENSIONS: ReadonlyMap<number, ExtSchema> = new Map<number, ExtSchema>([
  [
    20,
    ext("extIngest", "ingest", [
      [1, "time", "int64"],
      [2, "clientIp"],
      [3, "auth", "int64"],
      [4, "quality", "int64"],
      [5, "uploadTime", "int64"],
      [6, "userAgent"],
      [7, "client"],
    ]),
  ],
  [
    21,
    ext("extProtocol", "protocol", [
      [1, "metadataCrc", "int32"],
      [2, "ticketKeys", "strlists"],
      [3, "devMake"],
      [4, "devModel"],
      [5, "msp", "uint64"],
    ]),
  ],
  [
    22,
    ext("extUser", "user", [
      [1, "id"],
      [2, "localId"],
      [3, "authId"],
      [4, "locale"],
    ]),
  ],
  [
    23,
    ext("extDevice", "device", [
      [1, "id"],
      [2, "localId"],
      [3, "authId"],
      [4, "authSecId"],
      [5, "deviceClass"],
      [6, "orgId"],
      [7, "orgAuthId"],
      [8, "make"],
      [9, "model"],
      [10, "authIdEnt"],
    ]),
  ],
  [
    24,
    ext("extOs", "os", [
      [1, "locale"],
      [2, "expId"],
      [3, "bootId", "int32"],
      [4, "name"],
      [5, "ver"],
    ]),
  ],
  [
    25,
    ext("extApp", "app", [
      [1, "expId"],
      [2, "userId"],
      [3, "env"],
      [4, "asId", "int32"],
      [5, "id"],
      [6, "ver"],
      [7, "locale"],
      [8, "name"],
      [9, "sesId"],
    ]),
  ],
  [
    26,
    ext("extUtc", "utc", [
      [1, "stId"],
      [2, "aId"],
      [3, "raId"],
      [4, "op"],
      [5, "cat", "int64"],
      [6, "flags", "int64"],
      [7, "sqmId"],
      [9, "mon"],
      [10, "cpId", "int32"],
      [11, "bSeq"],
      [12, "epoch"],
      [13, "seq", "int64"],
      [14, "popSample", "double"],
      [15, "eventFlags", "int64"],
      [16, "wsId", "int64"],
      [17, "wcmp", "int64"],
      [18, "wPId", "int64"],
    ]),
  ],
  [
    27,
    ext("extXbl", "xbl", [
      [5, "claims", "strmap"],
      [10, "nbf"],
      [20, "exp"],
      [30, "sbx"],
      [40, "dty"],
      [50, "did"],
      [60, "xid"],
      [70, "uts", "uint64"],
      [80, "pid"],
      [90, "dvr"],
      [100, "tid", "uint32"],
      [110, "tvr"],
      [120, "sty"],
      [130, "sid"],
      [140, "eid", "int64"],
      [150, "ip"],
    ]),
  ],
  [
    28,
    ext("extJavascript", "javascript", [
      [10, "libVer"],
      [15, "osName"],
      [20, "browser"],
      [21, "browserVersion"],
      [25, "platform"],
      [30, "make"],
      [35, "model"],
      [40, "screenSize"],
      [45, "msfpc"],
      [50, "mc1Id"],
      [60, "mc1Lu", "uint64"],
      [70, "isMc1New", "bool"],
      [80, "ms0"],
      [90, "anid"],
      [100, "a"],
      [110, "msResearch"],
      [120, "csrvc"],
      [130, "rtCell"],
      [140, "rtEndAction"],
      [150, "rtPermId"],
      [160, "r"],
      [170, "wtFpc"],
      [180, "omniId"],
      [190, "gsfxSession"],
      [200, "domain"],
      [210, "userConsent", "bool"],
      [220, "browserLang"],
      [230, "serviceName"],
      [999, "dnt"],
    ]),
  ],
  [
    29,
    ext("extReceipts", "receipts", [
      [1, "originalTime", "int64"],
      [2, "uploadTime", "int64"],
      [3, "originalName"],
      [4, "flags", "uint64"],
    ]),
  ],
  [
    31,
    ext("extNet", "net", [
      [1, "provider"],
      [2, "cost"],
      [3, "type"],
    ]),
  ],
  [
    32,
    ext("extSdk", "sdk", [
      [1, "ver"],
      [2, "epoch"],
      [3, "seq", "int64"],
      [4, "installId"],
      [5, "libVer"],
    ]),
  ],
  [
    33,
    ext("extLoc", "loc", [
      [1, "id"],
      [2, "country"],
      [3, "tz"],
    ]),
  ],
  [
    34,
    ext("extCloud", "cloud", [
      [1, "fullEnvName"],
      [2, "location"],
      [3, "environment"],
      [4, "deploymentUnit"],
      [5, "name"],
      [6, "roleInstance"],
      [7, "role"],
    ]),
  ],
  [
    35,
    ext("extService", "service", [
      [1, "name"],
      [2, "role"],
      [3, "roleVersion"],
    ]),
  ],
  [36, ext("extCs", "cs", [[1, "sig"]])],
  [
    37,
    ext("extM365a", "m365a", [
      [1, "enrolledTenantId"],
      [2, "msp", "uint64"],
    ]),
  ],
  [42, ext("extMscv", "mscv", [[1, "cV"]])],
  [
    43,
    ext("extIntWeb", "intweb", [
      [1, "mc1Id"],
      [2, "msfpc"],
      [3, "anid"],
      [4, "serviceName"],
      [5, "mscom", "strmap"],
    ]),
  ],
  [
    44,
    ext("extIntService", "intservice", [
      [1, "fullEnvName"],
      [2, "location"],
      [3, "environment"],
      [4, "deploymentUnit"],
      [5, "name"],
    ]),
  ],
  [
    45,
    ext("extWeb", "web", [
      [10, "browser"],
      [20, "browserVer"],
      [30, "screenRes"],
      [40, "domain"],
      [50, "userConsent", "bool"],
      [60, "browserLang"],
      [70, "isManual", "bool"],
    ]),
  ],
]);

export const EXT_TYPE: Record<ExtKind, FieldType> = {
  string: "string",
  int32: "int32",
  uint32: "uint32",
  int64: "int64",
  uint64: "uint64",
  double: "double",
  bool: "bool",
  strmap: "string",
  strlists: "array",
};

/** The Record's string fields (§3.5) by ordinal: name in messages, field path. */
export const RECORD_STRINGS: Record<number, { where: string; path: string }> = {
  1: { where: "Record.ver", path: "ver" },
  2: { where: "Record.name", path: "name" },
  5: { where: "Record.iKey", path: "iKey" },
  7: { where: "Record.cV", path: "cV" },
  60: { where: "Record.baseType", path: "data.baseType" },
};

/** Record field 41 (`ext`, vector<Data>): generic extension data, no §2.3 name; shown as `ext.data.<key>`. */
export const EXT_DATA_PREFIX = "ext.data.";
export const BASE_DATA_PREFIX = "data.baseData.";

// ---- ValueKind (§3.5) ---------------------------------------------------------------------------

export const enum VK {
  Int64 = 0,
  UInt64 = 1,
  Int32 = 2,
  UInt32 = 3,
  Double = 4,
  String = 5,
  Bool = 6,
  DateTime = 7,
  Guid = 8,
  ArrayInt64 = 9,
  ArrayUInt64 = 10,
  ArrayInt32 = 11,
  ArrayUInt32 = 12,
  ArrayDouble = 13,
  ArrayString = 14,
  ArrayBool = 15,
  ArrayDateTime = 16,
  ArrayGuid = 17,
}
