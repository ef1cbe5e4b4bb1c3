import type { Type } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validate, type ValidationError } from 'class-validator';

export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * Validates a plain object against a class-validator DTO: unknown fields are refused, nothing is
 * coerced. Returns every problem with its field path under `prefix` (e.g. `payload.ms`).
 */
export async function validateDto(dto: Type<object>, plain: unknown, prefix = ''): Promise<FieldProblem[]> {
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) {
    return [{ field: prefix || '(body)', message: `${prefix || 'the value'} must be a JSON object` }];
  }
  const instance = plainToInstance(dto, plain);
  const errors = await validate(instance, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: false,
  });
  // A DTO that declares no fields at all is not inspected by class-validator: refuse any field here.
  const declaresFields = errors.length > 0 || hasValidationMetadata(instance);
  if (!declaresFields) {
    return Object.keys(plain).map((key) => ({
      field: join(prefix, key),
      message: `property ${key} should not exist`,
    }));
  }
  return flattenValidationErrors(errors, prefix);
}

function hasValidationMetadata(instance: object): boolean {
  return getMetadataStorage().getTargetValidationMetadatas(instance.constructor, '', true, false).length > 0;
}

function join(prefix: string, segment: string): string {
  if (prefix === '') return segment;
  return segment.startsWith('[') ? `${prefix}${segment}` : `${prefix}.${segment}`;
}

/** Turns class-validator's nested errors into a flat list of `{ field: 'a.b[2].c', message }`. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const property = error.property ?? '';
    const segment = /^\d+$/.test(property) ? `[${property}]` : property;
    const field = segment === '' ? prefix || '(body)' : join(prefix, segment);
    for (const message of Object.values(error.constraints ?? {})) problems.push({ field, message });
    if (error.children?.length) problems.push(...flattenValidationErrors(error.children, field));
  }
  return problems;
}
