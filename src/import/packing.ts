/**
 * How a decode thread hands an exchange's events back to the import thread. A structured clone of
 * the decoded and classified events (hundreds of small objects per upload, ~10 KB of JSON per
 * event) cost the import thread more than the decoding it was spared. Most of it repeats: a field's
 * path, part, type and annotations (its shape), and its classification (a handful of distinct
 * outcomes). Each thread numbers the shapes and classifications it has sent once, and an upload
 * travels as the numbers and the values in flat arrays; the import thread keeps the tables of
 * each thread and builds the objects back, sharing the repeated parts.
 */
import type { ClassificationFinding, ClassifiedEvent, ClassifiedField } from "../classify/types.js";
import type { DecodedUpload } from "../decode/registry.js";
import type { DecodedEvent, DecodedField, FieldAnnotations, FieldValue } from "../decode/types.js";
import type { Decoded } from "./decoders.js";

type Shape = Omit<DecodedField, "value">;
type EventHead = Omit<DecodedEvent, "fields">;
type ClassHead = Omit<ClassifiedEvent, "fields">;

export interface PackedUpload {
  /** The tables start over (the sender's grew past TABLE_LIMIT). */
  reset: boolean;
  shapes: Shape[];
  classes: ClassifiedField[];
  upload: Omit<DecodedUpload, "events">;
  request: Decoded["request"];
  events: EventHead[];
  /** Classified events without their fields, aligned with events. */
  classified: ClassHead[];
  /** Fields of each event, in order. */
  counts: number[];
  shapeIds: number[];
  /** -1: the field has no classification. */
  classIds: number[];
  values: FieldValue[];
}

/** Entries a table may hold before both sides start it over: bounds memory on hostile input. */
const TABLE_LIMIT = 50_000;

const sameAnnotations = (a: FieldAnnotations | undefined, b: FieldAnnotations | undefined): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.piiKind === b.piiKind &&
    a.customerContent === b.customerContent &&
    a.wireType === b.wireType &&
    a.scrubType === b.scrubType);

const sameFindings = (a: ClassificationFinding[] | undefined, b: ClassificationFinding[] | undefined): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.length === b.length &&
    a.every((f, i) => f.code === b[i].code && f.message === b[i].message && f.fieldPath === b[i].fieldPath && f.rule === b[i].rule));

const sameClass = (a: ClassifiedField, b: ClassifiedField): boolean =>
  a.category === b.category &&
  a.personal === b.personal &&
  a.confidence === b.confidence &&
  a.secret === b.secret &&
  a.reasons.length === b.reasons.length &&
  a.reasons.every((r, i) => r === b.reasons[i]) &&
  sameFindings(a.findings, b.findings);

/** The sending side (a decode thread). Tables are looked up by path and by rule, compared field by field. */
export class Packer {
  private shapes = new Map<string, Array<{ shape: Shape; id: number }>>();
  private classes = new Map<string, Array<{ cls: ClassifiedField; id: number }>>();
  private entries = 0;
  private shapeCount = 0;
  private classCount = 0;

  pack(d: Decoded): PackedUpload {
    const reset = this.entries > TABLE_LIMIT;
    if (reset) {
      this.shapes.clear();
      this.classes.clear();
      this.entries = 0;
      this.shapeCount = 0;
      this.classCount = 0;
    }
    const out: PackedUpload = {
      reset,
      shapes: [],
      classes: [],
      upload: { decoder: d.decoded.decoder, encodings: d.decoded.encodings, findings: d.decoded.findings, facts: d.decoded.facts },
      request: d.request,
      events: [],
      classified: [],
      counts: [],
      shapeIds: [],
      classIds: [],
      values: [],
    };
    let shapeCount = this.shapeCount;
    let classCount = this.classCount;
    d.decoded.events.forEach((e, n) => {
      const { fields, ...head } = e;
      out.events.push(head);
      const { fields: classifiedFields, ...classHead } = d.classified[n];
      out.classified.push(classHead);
      out.counts.push(fields.length);
      for (let i = 0; i < fields.length; i++) {
        const f = fields[i];
        let known = this.shapes.get(f.path);
        let shape = -1;
        if (known === undefined) this.shapes.set(f.path, (known = []));
        else
          for (const k of known)
            if (k.shape.part === f.part && k.shape.type === f.type && sameAnnotations(k.shape.annotations, f.annotations)) {
              shape = k.id;
              break;
            }
        if (shape === -1) {
          const def: Shape = f.annotations
            ? { path: f.path, part: f.part, type: f.type, annotations: f.annotations }
            : { path: f.path, part: f.part, type: f.type };
          known.push({ shape: def, id: (shape = shapeCount++) });
          out.shapes.push(def);
          this.entries++;
        }
        out.shapeIds.push(shape);
        out.values.push(f.value);
        const cf = classifiedFields[i];
        if (cf === undefined) {
          out.classIds.push(-1);
          continue;
        }
        let same = this.classes.get(cf.rule);
        let cls = -1;
        if (same === undefined) this.classes.set(cf.rule, (same = []));
        else
          for (const k of same)
            if (sameClass(k.cls, cf)) {
              cls = k.id;
              break;
            }
        if (cls === -1) {
          same.push({ cls: cf, id: (cls = classCount++) });
          out.classes.push(cf);
          this.entries++;
        }
        out.classIds.push(cls);
      }
    });
    this.shapeCount = shapeCount;
    this.classCount = classCount;
    return out;
  }
}

/** The receiving side (the import thread): one per decode thread, fed its messages in order. */
export class Unpacker {
  private shapes: Shape[] = [];
  private classes: ClassifiedField[] = [];

  unpack(p: PackedUpload): Decoded {
    if (p.reset) {
      this.shapes = [];
      this.classes = [];
    }
    for (const s of p.shapes) this.shapes.push(s);
    for (const c of p.classes) this.classes.push(c);
    const events: DecodedEvent[] = [];
    const classified: ClassifiedEvent[] = [];
    let j = 0;
    p.events.forEach((head, n) => {
      const count = p.counts[n];
      const fields: DecodedField[] = new Array<DecodedField>(count);
      const classes: ClassifiedField[] = [];
      for (let i = 0; i < count; i++, j++) {
        const s = this.shapes[p.shapeIds[j]];
        fields[i] = s.annotations
          ? { path: s.path, part: s.part, value: p.values[j], type: s.type, annotations: s.annotations }
          : { path: s.path, part: s.part, value: p.values[j], type: s.type };
        const c = p.classIds[j];
        if (c !== -1) classes[i] = this.classes[c];
      }
      events.push({ ...head, fields });
      classified.push({ ...p.classified[n], fields: classes });
    });
    return { decoded: { ...p.upload, events }, classified, request: p.request };
  }
}
