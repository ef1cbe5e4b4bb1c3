import type { Type } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validate, type ValidationError } from 'class-validator';

export interface FieldProblem {
  field: string;
  message: string;
}

export interface ValidatedDto<T> {
  /** The DTO instance; only meaningful when there are no problems. */
  value: T;
  problems: FieldProblem[];
}

/**
 * A DTO class may offer `acceptsPlain`: a quick test, true only of objects its decorators accept (false
 * when in doubt). An object it accepts skips class-validator, whose cost per object is what a batch of a
 * thousand jobs would otherwise spend most of its time on; anything else is validated in full, so the
 * problems reported are always class-validator's own.
 */
export interface PlainCheck {
  acceptsPlain(plain: Record<string, unknown>): boolean;
}

/** DTO classes with and without validation decorators: their metadata is fixed once the class is defined. */
const decoratedFieldsByDto = new WeakMap<Type<object>, boolean>();

/**
 * Validates a plain object against a class-validator DTO: unknown fields are refused, nothing is
 * coerced, and `plain` itself is never changed. Returns the instance and every problem with its field
 * path under `prefix` (e.g. `payload.ms`).
 */
export async function validateDto<T extends object>(
  dto: Type<T>,
  plain: unknown,
  prefix = '',
): Promise<ValidatedDto<T>> {
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) {
    const problem = { field: prefix || '(body)', message: `${prefix || 'the value'} must be a JSON object` };
    return { value: new dto(), problems: [problem] };
  }
  const fields = plain as Record<string, unknown>;
  const accepted = acceptedQuickly(dto, fields);
  if (accepted) return { value: accepted, problems: [] };
  const instance = toInstance(dto, fields);
  const errors = await validate(instance, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: false,
  });
  // A DTO that declares no fields at all is not inspected by class-validator: refuse any field here.
  const declaresFields = errors.length > 0 || hasValidationMetadata(instance);
  if (!declaresFields) {
    return { value: instance, problems: Object.keys(plain).map((key) => unknownField(prefix, key)) };
  }
  // Keys that name a member of the prototype (`constructor`, `__proto__`, `toString`, ...) are never
  // copied onto the instance, so class-validator does not see them: they are unknown fields all the same.
  const unseen = Object.keys(plain).filter((key) => key in dto.prototype);
  return {
    value: instance,
    problems: [...unseen.map((key) => unknownField(prefix, key)), ...flattenValidationErrors(errors, prefix)],
  };
}

/**
 * The DTO instance for `plain` when the quick checks accept it (the DTO's `acceptsPlain`, or a DTO without
 * fields given none: the payload of a job type that takes none), else undefined, and validateDto decides.
 * Synchronous and allocation-free but for the instance: a batch of a thousand jobs checks each this way.
 */
export function acceptedQuickly<T extends object>(dto: Type<T>, plain: unknown): T | undefined {
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) return undefined;
  const fields = plain as Record<string, unknown>;
  if ((dto as Partial<PlainCheck> & Type<T>).acceptsPlain?.(fields)) return Object.assign(new dto(), fields);
  if (!hasDecoratedFields(dto) && hasNoOwnKeys(fields)) return new dto();
  return undefined;
}

function hasNoOwnKeys(object: object): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return false;
  return true;
}

/**
 * The DTO instance for `plain`. Only scalar fields go through class-transformer (for conversions such
 * as `@Type(() => Number)` on a query string): it copies objects and arrays by rules of its own, leaving
 * out keys such as `toString`, taking an own `constructor` key for a class (and throwing on some). Objects
 * and arrays are the client's JSON, such as a payload, and the instance holds them as parsed. So a DTO
 * validated here declares scalar fields and plain JSON values only, no nested DTO classes.
 */
function toInstance<T extends object>(dto: Type<T>, plain: Record<string, unknown>): T {
  const scalars: Record<string, unknown> = {};
  const nested: [string, unknown][] = [];
  for (const key of Object.keys(plain)) {
    if (key in dto.prototype) continue;
    const value = plain[key];
    if (value !== null && typeof value === 'object') nested.push([key, value]);
    else scalars[key] = value;
  }
  const instance = plainToInstance(dto, scalars);
  for (const [key, value] of nested) {
    Object.defineProperty(instance, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return instance;
}

function unknownField(prefix: string, key: string): FieldProblem {
  return { field: fieldPath(prefix, key), message: `property ${key} should not exist` };
}

function hasValidationMetadata(instance: object): boolean {
  return hasDecoratedFields(instance.constructor as Type<object>);
}

function hasDecoratedFields(dto: Type<object>): boolean {
  let declares = decoratedFieldsByDto.get(dto);
  if (declares === undefined) {
    declares = getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false).length > 0;
    decoratedFieldsByDto.set(dto, declares);
  }
  return declares;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const MAX_KEY_SHOWN = 64;

/**
 * The path of `key` inside the field `prefix`: `a.b`, `a[2]`, or, for a key that is not a plain name,
 * `a["x y"]` (JSON-quoted, so an odd key still reads unambiguously).
 */
export function fieldPath(prefix: string, key: string | number): string {
  if (typeof key === 'number') return `${prefix}[${key}]`;
  if (IDENTIFIER.test(key)) return prefix === '' ? key : `${prefix}.${key}`;
  return `${prefix}[${JSON.stringify(shorten(key))}]`;
}

/** A key can be as long as the body; a field name need not be. */
function shorten(key: string): string {
  if (key.length <= MAX_KEY_SHOWN) return key;
  const end = /[\ud800-\udbff]/.test(key[MAX_KEY_SHOWN - 1]) ? MAX_KEY_SHOWN - 1 : MAX_KEY_SHOWN;
  return `${key.slice(0, end)}…`;
}

/** Turns class-validator's nested errors into a flat list of `{ field: 'a.b[2].c', message }`. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const property = error.property ?? '';
    const field =
      property === ''
        ? prefix || '(body)'
        : fieldPath(prefix, /^\d+$/.test(property) ? Number(property) : property);
    for (const message of Object.values(error.constraints ?? {})) problems.push({ field, message });
    if (error.children?.length) problems.push(...flattenValidationErrors(error.children, field));
  }
  return problems;
}
