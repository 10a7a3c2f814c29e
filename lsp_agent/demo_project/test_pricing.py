import unittest

from pricing import LineItem, apply_discount, order_total


class PricingTest(unittest.TestCase):
    def test_no_discount(self):
        self.assertEqual(apply_discount(80.0, 0), 80.0)

    def test_quarter_off(self):
        self.assertEqual(apply_discount(80.0, 25), 60.0)

    def test_order_total(self):
        items = [LineItem("pen", 1.5, 4), LineItem("book", 12.0)]
        self.assertEqual(order_total(items, 10), 16.2)

    def test_rejects_bad_discount(self):
        with self.assertRaises(ValueError):
            apply_discount(10.0, 150)


if __name__ == "__main__":
    unittest.main()
