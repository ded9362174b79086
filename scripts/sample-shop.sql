-- A realistic sample shop, generated (not downloaded) with MariaDB's
-- SEQUENCE engine: customers with emails and phones, products, orders and
-- order items. Used by the quickstart, the example-pipeline test and the docs.
-- Statements end with ";" at the end of a line (the test harness splits there).
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE TABLE shop.customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(190) NOT NULL,
  phone VARCHAR(32) NULL,
  full_name VARCHAR(100) NOT NULL,
  country CHAR(2) NOT NULL,
  tier ENUM('basic','silver','gold') NOT NULL DEFAULT 'basic',
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_email (email),
  KEY by_country (country)
) ENGINE=InnoDB;
CREATE TABLE shop.products (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sku CHAR(12) NOT NULL UNIQUE,
  name VARCHAR(120) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_kg FLOAT NULL,
  attributes JSON NULL
) ENGINE=InnoDB;
CREATE TABLE shop.orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  created_at DATETIME(3) NOT NULL,
  shipped_at TIMESTAMP NULL DEFAULT NULL,
  KEY by_customer (customer_id, created_at),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE shop.order_items (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id BIGINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  qty SMALLINT UNSIGNED NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT fk_items_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB;
INSERT INTO shop.customers (email, phone, full_name, country, tier, created_at)
SELECT
  CONCAT(LOWER(ELT(1 + seq % 8, 'Ana','Bo','Chen','Dara','Emil','Farah','Goran','Hana')), '.',
         LOWER(ELT(1 + (seq DIV 8) % 7, 'Silva','Berg','Wang','Okafor','Novak','Haddad','Kim')), seq, '@example.com'),
  IF(seq % 10 = 0, NULL, CONCAT('+1-555-', LPAD(seq % 10000, 4, '0'))),
  CONCAT(ELT(1 + seq % 8, 'Ana','Bo','Chen','Dara','Emil','Farah','Goran','Hana'), ' ',
         ELT(1 + (seq DIV 8) % 7, 'Silva','Berg','Wang','Okafor','Novak','Haddad','Kim')),
  ELT(1 + seq % 5, 'US','DE','BR','JP','NG'),
  ELT(1 + seq % 3, 'basic','silver','gold'),
  '2023-01-01' + INTERVAL seq * 3607 SECOND + INTERVAL (seq % 1000) * 1000 MICROSECOND
FROM shop.seq_1_to_2000;
INSERT INTO shop.products (sku, name, price, weight_kg, attributes)
SELECT CONCAT('SKU-', LPAD(seq, 8, '0')),
       CONCAT(ELT(1 + seq % 5, 'Blue','Red','Green','Black','White'), ' ',
              ELT(1 + seq % 4, 'mug','shirt','lamp','notebook')),
       ROUND(2 + (seq * 7919 % 20000) / 100, 2),
       (seq % 50) / 7,
       JSON_OBJECT('color', ELT(1 + seq % 5, 'blue','red','green','black','white'), 'stock', seq % 37)
FROM shop.seq_1_to_200;
INSERT INTO shop.orders (customer_id, status, total, created_at, shipped_at)
SELECT 1 + (seq * 7) % 2000,
       ELT(1 + seq % 4, 'new','paid','shipped','cancelled'),
       0,
       '2024-01-01' + INTERVAL seq * 61 SECOND,
       IF(seq % 4 = 2, '2024-01-02' + INTERVAL seq * 61 SECOND, NULL)
FROM shop.seq_1_to_10000;
INSERT INTO shop.order_items (order_id, product_id, qty, unit_price)
SELECT 1 + seq % 10000, 1 + (seq * 13) % 200, 1 + seq % 5, ROUND(2 + ((1 + (seq * 13) % 200) * 7919 % 20000) / 100, 2)
FROM shop.seq_1_to_30000;
UPDATE shop.orders o JOIN (SELECT order_id, SUM(qty * unit_price) AS s FROM shop.order_items GROUP BY order_id) i
  ON i.order_id = o.id SET o.total = i.s;
ANALYZE TABLE shop.customers, shop.products, shop.orders, shop.order_items;
