/**
 * A WHERE clause built from the filters in use: only the conditions given, so SQLite can pick an
 * index for them, each with its named parameter.
 */
export class Conditions {
  readonly where: string[] = [];

  constructor(readonly params: Record<string, unknown> = {}) {}

  /** Adds `sql`, which reads `@name`, when the value is given (not undefined). */
  when(value: unknown, name: string, sql: string): void {
    if (value === undefined) return;
    this.where.push(sql);
    this.params[name] = value;
  }
}
