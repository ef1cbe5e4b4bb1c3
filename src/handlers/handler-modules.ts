import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { isAbsolute, resolve } from 'node:path';
import { fieldPath, type FieldProblem } from '../common/dto-validation';
import { JOB_TYPE_PATTERN } from '../jobs/dto/create-job.dto';
import type { HandlerDefinition } from './handler-definition';

/** A handler module that cannot be used: the boot stops with this message, which names the module. */
export class HandlerModuleError extends Error {
  constructor(specifier: string, problem: string) {
    super(`HANDLER_MODULES: "${specifier}" ${problem}`);
    this.name = 'HandlerModuleError';
  }
}

/** A definition from a handler module, checked, with its payload schema compiled. */
export interface LoadedHandler {
  definition: HandlerDefinition;
  /** Where it came from, for messages. */
  specifier: string;
  validatePayload(payload: object): FieldProblem[];
}

/**
 * Loads every module HANDLER_MODULES names, in order, and checks each definition: a module that cannot
 * be found or throws while loading, an export that is not an array of definitions, a definition without
 * a valid type, description or run function, a payload_schema ajv refuses, or a type already taken
 * (by a built-in handler or an earlier definition) is a HandlerModuleError.
 */
export async function loadHandlerModules(
  specifiers: readonly string[],
  takenTypes: ReadonlySet<string>,
): Promise<LoadedHandler[]> {
  // strict: a schema with a typo in a keyword (`requird`) is refused at boot instead of checking nothing.
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  const taken = new Map<string, string>([...takenTypes].map((type) => [type, 'a built-in handler']));
  const loaded: LoadedHandler[] = [];
  for (const specifier of specifiers) {
    const definitions = await importDefinitions(specifier);
    for (const [index, candidate] of definitions.entries()) {
      const definition = checkDefinition(specifier, index, candidate);
      const owner = taken.get(definition.type);
      if (owner) {
        throw new HandlerModuleError(
          specifier,
          `defines job type "${definition.type}", already defined by ${owner}`,
        );
      }
      taken.set(definition.type, `"${specifier}"`);
      let validate: ValidateFunction;
      try {
        validate = ajv.compile(definition.payload_schema);
      } catch (error) {
        throw new HandlerModuleError(
          specifier,
          `has an invalid payload_schema for job type "${definition.type}": ${(error as Error).message}`,
        );
      }
      loaded.push({
        definition,
        specifier,
        validatePayload: (payload) => (validate(payload) ? [] : toFieldProblems(validate.errors ?? [])),
      });
    }
  }
  return loaded;
}

/**
 * A path (absolute, or relative to the working directory) or a package name, resolved the way Node
 * resolves a require from the working directory, then imported (CommonJS or ES module).
 */
async function importDefinitions(specifier: string): Promise<unknown[]> {
  const request = specifier.startsWith('.') || isAbsolute(specifier) ? resolve(specifier) : specifier;
  let exported: Record<string, unknown>;
  try {
    const file = require.resolve(request, { paths: [process.cwd()] });
    exported = (await import(file)) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new HandlerModuleError(specifier, `cannot be loaded: ${reason}`);
  }
  // `default` of a CommonJS module is its module.exports, which holds `default` again when it was
  // compiled from TypeScript's `export default [...]`.
  const nested = exported.default as Record<string, unknown> | undefined;
  const definitions = [exported.default, exported.handlers, nested?.default, nested?.handlers].find(
    Array.isArray,
  );
  if (!definitions) {
    throw new HandlerModuleError(
      specifier,
      'must export an array of handler definitions (module.exports = [...] or export default [...])',
    );
  }
  return definitions as unknown[];
}

function checkDefinition(specifier: string, index: number, candidate: unknown): HandlerDefinition {
  const fail = (problem: string): never => {
    throw new HandlerModuleError(specifier, `definition ${index}: ${problem}`);
  };
  if (candidate === null || typeof candidate !== 'object') return fail('must be an object');
  const definition = candidate as Partial<HandlerDefinition>;
  if (typeof definition.type !== 'string' || !JOB_TYPE_PATTERN.test(definition.type)) {
    return fail('type must be a job type name such as report.render (letters, digits and _.:-, up to 100)');
  }
  const named = `definition "${definition.type}"`;
  if (typeof definition.description !== 'string' || definition.description.trim() === '') {
    throw new HandlerModuleError(specifier, `${named}: description must be a non-empty string`);
  }
  const schema = definition.payload_schema;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new HandlerModuleError(specifier, `${named}: payload_schema must be a JSON Schema object`);
  }
  if (typeof definition.run !== 'function') {
    throw new HandlerModuleError(specifier, `${named}: run must be a function (payload, context)`);
  }
  return definition as HandlerDefinition;
}

/** ajv's errors as `{ field, message }` under `payload`, like the problems of a built-in payload DTO. */
function toFieldProblems(errors: ErrorObject[]): FieldProblem[] {
  return errors.map((error) => {
    const segments = error.instancePath
      .split('/')
      .slice(1)
      .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
    let field = segments.reduce<string>(
      (path, segment) => fieldPath(path, /^\d+$/.test(segment) ? Number(segment) : segment),
      'payload',
    );
    const params = error.params as { missingProperty?: string; additionalProperty?: string };
    if (error.keyword === 'required' && params.missingProperty !== undefined) {
      return {
        field: fieldPath(field, params.missingProperty),
        message: `${params.missingProperty} is required`,
      };
    }
    if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) {
      field = fieldPath(field, params.additionalProperty);
      return { field, message: `property ${params.additionalProperty} should not exist` };
    }
    return { field, message: `${field} ${error.message ?? 'is invalid'}` };
  });
}
