-- Schema changes as real applications, ORMs and migration tools write them,
-- run in this order in database `ddl`. Each statement's `-- expect:` line
-- gives how sluice's DDL parser must classify it (kind, then after `:` the
-- tables it changes, then after `|` the other tables it names), resolved against the
-- default database `ddl`. The parser's unit test checks every expectation;
-- tests/exactness.rs runs the statements on a source while sluice follows,
-- with the target renamed, and compares both schemas and data.
--
-- Statements end with `;` at the end of a line.

-- expect: CreateTable: ddl.t1
CREATE TABLE t1 (id INT NOT NULL AUTO_INCREMENT, a VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, b INT NOT NULL DEFAULT 1, PRIMARY KEY (id)) ENGINE=InnoDB;

-- expect: CreateIndex: ddl.t1
CREATE INDEX li USING BTREE ON t1 (id);

-- expect: CreateIndex: ddl.t1
CREATE UNIQUE INDEX IF NOT EXISTS ua ON t1 (a) USING BTREE;

-- expect: CreateIndex: ddl.t1
CREATE OR REPLACE INDEX lb ON ddl.t1 (b) ALGORITHM=INPLACE LOCK=NONE;

-- expect: AlterTable: ddl.t1
/* a leading comment */ ALTER TABLE t1 ADD COLUMN c DATETIME(3) NULL DEFAULT NULL COMMENT 'it''s -- not a comment', ALGORITHM=INPLACE, LOCK=NONE;

-- expect: AlterTable: ddl.t1
ALTER TABLE `t1` DROP INDEX li;

-- expect: DropIndex: ddl.t1
DROP INDEX IF EXISTS lb ON t1;

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 RENAME COLUMN c TO c2, RENAME INDEX ua TO ua2;

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 MODIFY COLUMN b BIGINT NOT NULL DEFAULT 0 AFTER a;

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 CHANGE COLUMN b bb BIGINT NOT NULL DEFAULT 0;

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 ADD COLUMN IF NOT EXISTS e ENUM('x','y,z') DEFAULT 'x' FIRST;

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 ALTER COLUMN bb SET DEFAULT 5, COMMENT = 'a table comment';

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 ADD INDEX ix_bb_c2 (bb DESC, c2), ADD CONSTRAINT chk_bb CHECK (bb >= 0);

-- expect: AlterTable: ddl.t1
ALTER TABLE t1 DROP COLUMN IF EXISTS e;

-- expect: AlterTable: ddl.t1
ALTER TABLE ddl.t1 AUTO_INCREMENT = 1000;

-- expect: AlterTable: ddl.t1
SET STATEMENT max_statement_time=60 FOR ALTER TABLE t1 ADD COLUMN z INT DEFAULT 3;

-- expect: AlterTable: ddl.t1
/*!40000 ALTER TABLE `t1` DISABLE KEYS */;

-- expect: AlterTable: ddl.t1
/*M!100100 ALTER TABLE `t1` ENABLE KEYS */;

-- expect: CreateTable: ddl.weird name
CREATE TABLE IF NOT EXISTS `weird name` (`id` BIGINT UNSIGNED NOT NULL PRIMARY KEY, `select` INT, `ünï` VARCHAR(5), `back``tick` INT) DEFAULT CHARSET=latin1;

-- expect: CreateTable: ddl.p
CREATE TABLE p (id INT NOT NULL PRIMARY KEY, name VARCHAR(10)) ENGINE=InnoDB;

-- expect: CreateTable: ddl.c | ddl.p
CREATE TABLE c (id INT NOT NULL PRIMARY KEY, pid INT, CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB;

-- expect: AlterTable: ddl.c
ALTER TABLE c DROP FOREIGN KEY fk_c;

-- expect: AlterTable: ddl.c | ddl.p
ALTER TABLE c ADD CONSTRAINT fk_c2 FOREIGN KEY (pid) REFERENCES ddl.p (id) ON DELETE SET NULL;

-- expect: CreateTable: ddl.parts
CREATE TABLE parts (id INT NOT NULL, d DATE NOT NULL, PRIMARY KEY (id, d)) PARTITION BY RANGE (YEAR(d)) (PARTITION p2020 VALUES LESS THAN (2021), PARTITION pmax VALUES LESS THAN MAXVALUE);

-- expect: AlterTable: ddl.parts
ALTER TABLE parts REORGANIZE PARTITION pmax INTO (PARTITION p2021 VALUES LESS THAN (2022), PARTITION pmax VALUES LESS THAN MAXVALUE);

-- expect: AlterTable: ddl.parts
ALTER TABLE parts TRUNCATE PARTITION p2020;

-- expect: AlterTable: ddl.parts
ALTER TABLE parts DROP PARTITION p2021;

-- expect: CreateTable: ddl.ft
CREATE TABLE ft (id INT NOT NULL PRIMARY KEY, body TEXT, FULLTEXT KEY fb (body)) ENGINE=InnoDB;

-- expect: CreateIndex: ddl.ft
CREATE FULLTEXT INDEX fb2 ON ft (body);

-- expect: CreateTable: ddl.sp
CREATE TABLE sp (id INT NOT NULL PRIMARY KEY, g POINT NOT NULL, SPATIAL INDEX (g)) ENGINE=InnoDB;

-- expect: CreateTable: ddl.gen
CREATE TABLE gen (id INT NOT NULL PRIMARY KEY, a INT, s INT AS (a * 2) STORED, v INT AS (a + 1) VIRTUAL, KEY (s));

-- expect: CreateTable: ddl.t2 | ddl.t1
CREATE TABLE t2 LIKE t1;

-- expect: RenameTable: ddl.t2, ddl.t3, ddl.weird name, ddl.weird2
RENAME TABLE t2 TO t3, `weird name` TO weird2;

-- expect: AlterTable: ddl.t3, ddl.t4
ALTER TABLE t3 RENAME TO t4;

-- expect: AlterTable: ddl.t4
ALTER TABLE t4 FORCE;

-- expect: AlterTable: ddl.t4
ALTER TABLE t4 CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- expect: TruncateTable: ddl.t4
TRUNCATE t4;

-- expect: TruncateTable: ddl.t4
TRUNCATE TABLE ddl.t4;

-- expect: Other
OPTIMIZE TABLE t1;

-- expect: Other
ANALYZE TABLE t1;

-- expect: DropTable: ddl.t4, ddl.weird2
DROP TABLE IF EXISTS t4, weird2;

-- expect: Other
CREATE USER IF NOT EXISTS 'corpus'@'localhost';

-- expect: Other
GRANT SELECT ON ddl.* TO 'corpus'@'localhost';

-- expect: Other
DROP USER 'corpus'@'localhost';
