import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The rule that a payload is a JSON object moves from a CHECK constraint to the insert, like the formats of
 * job_type and callback_url (migration 1764950000000).
 *
 * PostgreSQL evaluates every CHECK constraint on every UPDATE of a row, and jsonb_typeof reads its whole
 * argument: a large payload, kept compressed out of line (TOAST), was read back and decompressed by the
 * claim and again by the completion, although neither touches it. The payload never changes after the
 * insert (jobs_refuse_payload_change), so checking it once, when the row is inserted, keeps the rule.
 */
export class CheckPayloadOnce1764980000000 implements MigrationInterface {
  name = 'CheckPayloadOnce1764980000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_payload_not_object() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'payload must be a JSON object, not %', jsonb_typeof(NEW.payload)
          USING ERRCODE = 'check_violation', COLUMN = 'payload';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_payload_not_object BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (jsonb_typeof(NEW.payload) IS DISTINCT FROM 'object')
        EXECUTE FUNCTION jobs_refuse_payload_not_object()
    `);
    await queryRunner.query(`ALTER TABLE jobs DROP CONSTRAINT jobs_payload_is_object`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE jobs ADD CONSTRAINT jobs_payload_is_object CHECK (jsonb_typeof(payload) = 'object') NOT VALID`,
    );
    await queryRunner.query(`ALTER TABLE jobs VALIDATE CONSTRAINT jobs_payload_is_object`);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_payload_not_object ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_payload_not_object()`);
  }
}
