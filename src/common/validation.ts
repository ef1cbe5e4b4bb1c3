import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import { RequestValidationError, type FieldError } from '../jobs/jobs.errors';
import { validateDto, type FieldProblem } from './dto-validation';

/** Parameter types that are not DTO classes: a route parameter or a header arrives as a string and stays one. */
const PLAIN_TYPES: unknown[] = [String, Number, Boolean, Object, Array];

/**
 * A problem found in a batch item (`jobs[3].priority`) carries its index and the field within the item
 * (`{ index: 3, field: 'priority' }`), as the batch endpoint documents.
 */
export function toFieldError(problem: FieldProblem): FieldError {
  const item = /^jobs\[(\d+)\]\.?(.*)$/.exec(problem.field);
  return item ? { index: Number(item[1]), field: item[2] || 'jobs', message: problem.message } : problem;
}

/**
 * Validates bodies and query strings against their DTO class with validateDto: unknown fields are
 * refused, types are never coerced in bodies, and every problem is reported with its field. Unlike
 * Nest's ValidationPipe it never edits the request (that one deletes `constructor` and `prototype` keys
 * in place, payloads included), so what is stored is what the client sent.
 */
class DtoValidationPipe implements PipeTransform {
  async transform(value: unknown, { type, metatype }: ArgumentMetadata): Promise<unknown> {
    if ((type !== 'body' && type !== 'query') || !metatype || PLAIN_TYPES.includes(metatype)) return value;
    // No body at all is validated as an empty one, so that the 400 names the required fields.
    const { value: dto, problems } = await validateDto(metatype, value ?? {});
    if (problems.length > 0) throw new RequestValidationError(problems.map(toFieldError));
    return dto;
  }
}

export function createValidationPipe(): PipeTransform {
  return new DtoValidationPipe();
}
