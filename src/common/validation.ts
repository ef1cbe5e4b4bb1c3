import { ValidationPipe } from '@nestjs/common';
import { flattenValidationErrors } from './dto-validation';
import { RequestValidationError, type FieldError } from '../jobs/jobs.errors';

/**
 * Unknown fields are refused, types are never coerced in bodies, and every problem is reported with
 * its field; items of a batch (`jobs[3].priority`) also carry their index.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    exceptionFactory: (errors) =>
      new RequestValidationError(
        flattenValidationErrors(errors).map((problem): FieldError => {
          const item = /^jobs\[(\d+)\]\.?(.*)$/.exec(problem.field);
          return item
            ? { index: Number(item[1]), field: item[2] || 'jobs', message: problem.message }
            : problem;
        }),
      ),
  });
}
